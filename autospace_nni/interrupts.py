"""Ctrl-C and SIGTERM for the command line and for :func:`~autospace_nni.search.run_search`: remember that one
came, whoever catches the ``KeyboardInterrupt``.

Libraries under the commands answer Ctrl-C their own way: Lightning shuts down gracefully and calls
``sys.exit(1)``; NNI's experiment stops its manager and *returns* from ``run()`` as if it had finished.
:func:`watching` installs a handler for SIGINT and SIGTERM that records the signal before raising
``KeyboardInterrupt`` as Python's default SIGINT handler does, so the caller can still tell an interruption from
an ending (:func:`requested`, :func:`check`), and the CLI prints one line and exits 128 + the signal's number
(130 for Ctrl-C, 143 for SIGTERM: :func:`exit_status`). Python's default SIGTERM ends the process at once, which
leaves NNI's manager (a ``node`` process) running and holding its port; a job scheduler, ``timeout`` or ``kill``
sends SIGTERM, so it gets the same orderly stop as Ctrl-C.

NNI 3.0 leaves its manager running when the interrupt comes while the experiment starts: its ``stop()`` finds
no manager handle yet. :func:`reap_children` stops such leftovers after an interruption, and a watchdog delivers
the interrupt again where a library swallowed it, and ends the process :data:`GRACE_S` seconds after the first
signal if the libraries are still winding down inside the watched block (a caller that catches the
``KeyboardInterrupt`` outside it, in a notebook say, is left alone).
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import signal
import sys
import threading
import time

__all__ = ['watching', 'watched', 'requested', 'received', 'check', 'exit_status', 'reap_children']

#: the signals :func:`watching` turns into ``KeyboardInterrupt``
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = False
_signum = signal.SIGINT   # the first signal since the outermost watched block began
_depth = 0   # how many watched blocks are open (in the main thread)
_generation = 0   # counts the outermost blocks, so a watchdog never outlives its own


def requested() -> bool:
    """Whether Ctrl-C or SIGTERM came since the outermost :func:`watching` block began."""
    return _requested


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C or SIGTERM came (after a library swallowed it)."""
    if _requested:
        raise KeyboardInterrupt


def received() -> signal.Signals:
    """The first signal that came since the outermost :func:`watching` block began (SIGINT before any came)."""
    return _signum


def exit_status() -> int:
    """The shell's status for a process ended by the signal that came: 128 + its number (130 for Ctrl-C)."""
    return 128 + int(_signum)


#: seconds the libraries get to wind down after Ctrl-C or SIGTERM before the process ends anyway
GRACE_S = 60.0


_swallowed = threading.Event()


def _watchdog():
    """After Ctrl-C: deliver the interrupt again whenever a library swallowed it (Python prints "Exception
    ignored" and goes on, e.g. when it lands in logging's fork handler as NNI starts its manager), and end the
    process once :data:`GRACE_S` seconds have passed."""
    deadline, generation = time.monotonic() + GRACE_S, _generation
    while time.monotonic() < deadline:
        if _depth == 0 or _generation != generation:   # its block has ended: whoever caught the interrupt goes on
            return
        if _swallowed.wait(timeout=0.5):
            _swallowed.clear()
            _thread.interrupt_main()
    reap_children()
    sys.stderr.write(f'\nautospace-nni: interrupted; the run did not stop within {GRACE_S:g} s, so the process was '
                     'ended (rerun the same command)\n')
    sys.stderr.flush()
    os._exit(exit_status())


def _handler(signum, frame):
    global _requested, _signum
    if not _requested:   # a watchdog, so that a library that eats the interrupt cannot hold the terminal
        _signum = signal.Signals(signum)
        threading.Thread(target=_watchdog, daemon=True).start()
    _requested = True
    signal.default_int_handler(signum, frame)   # raises KeyboardInterrupt, whichever signal it was


def _unraisable(hook):
    def quiet(unraisable):
        if _requested and isinstance(unraisable.exc_value, KeyboardInterrupt):
            _swallowed.set()   # our interrupt, lost where Python cannot raise it: the watchdog sends it again
            return
        hook(unraisable)
    return quiet


@contextlib.contextmanager
def watching():
    """Turn Ctrl-C and SIGTERM into a recorded ``KeyboardInterrupt`` while the block runs (in the main thread;
    elsewhere a no-op). Blocks nest: the outermost one installs the handlers and puts the previous ones back."""
    global _requested, _signum, _depth, _generation
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _requested, _signum, _generation = False, signal.SIGINT, _generation + 1
        _swallowed.clear()
        previous = {s: signal.signal(s, _handler) for s in SIGNALS}
        hook = sys.unraisablehook
        sys.unraisablehook = _unraisable(hook)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for s, h in previous.items():
                signal.signal(s, h)
            sys.unraisablehook = hook


def watched(fn):
    """``fn`` run inside :func:`watching`: for library functions that run NNI experiments, whose ``run()``
    returns as if done on Ctrl-C, so that :func:`check` after it raises even where no command line watches."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with watching():
            return fn(*args, **kwargs)
    return wrapper


def reap_children(marker: str = 'nni_node', timeout: float = 10.0) -> list:
    """Stop this process's descendants whose command line holds ``marker`` (terminate, then kill after
    ``timeout`` seconds); returns their PIDs."""
    import psutil
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if marker in ' '.join(child.cmdline()):
                found.append(child)
        except psutil.Error:   # gone already, or a zombie
            continue
    for child in found:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(found, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    return [c.pid for c in found]


def close_progress_bars() -> int:
    """Close every tqdm bar still open (each ends its line), so a message printed next starts a line of its own:
    Ctrl-C can land between a bar's first draw and the code that would close it. Returns how many were closed."""
    from tqdm import std
    from tqdm.auto import tqdm as auto_tqdm
    bars = {b for cls in {std.tqdm, auto_tqdm} for b in list(getattr(cls, '_instances', ()))}
    for bar in bars:
        with contextlib.suppress(Exception):
            bar.close()
    return len(bars)
