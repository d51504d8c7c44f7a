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

NNI 3.0 leaves its manager running when the interrupt comes while the experiment starts: its launcher kills
the new manager on an ``Exception`` but not on a ``KeyboardInterrupt``, and its ``stop()`` finds no manager handle
yet. :func:`reap_children` stops such leftovers after an interruption (:func:`watched` does it for the managers
its own call started; :func:`stopped` for the command line's whole process), and a watchdog delivers
the interrupt again where a library swallowed it, and ends the process :data:`GRACE_S` seconds after the first
signal if the libraries are still winding down inside the watched block (a caller that catches the
``KeyboardInterrupt`` outside it, in a notebook say, is left alone); it then prints the main thread's innermost
frames, so that a report can say which library held on to the interrupt.
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

__all__ = ['watching', 'watched', 'requested', 'received', 'check', 'exit_status', 'stopped', 'reap_children',
           'close_progress_bars']

#: the signals :func:`watching` turns into ``KeyboardInterrupt``
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_signum = None   # the first signal since the outermost watched block began; None until one comes
_depth = 0   # how many watched blocks are open (in the main thread)
_generation = 0   # counts the outermost blocks, so a watchdog never outlives its own


def requested() -> bool:
    """Whether Ctrl-C or SIGTERM came since the outermost :func:`watching` block began."""
    return _signum is not None


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C or SIGTERM came (after a library swallowed it)."""
    if _signum is not None:
        raise KeyboardInterrupt


def received() -> signal.Signals:
    """The first signal that came since the outermost :func:`watching` block began (SIGINT before any came)."""
    return _signum or signal.SIGINT


def exit_status() -> int:
    """The shell's status for a process ended by the signal that came: 128 + its number (130 for Ctrl-C)."""
    return 128 + int(received())


#: seconds the libraries get to wind down after Ctrl-C or SIGTERM before the process ends anyway
GRACE_S = 60.0


_swallowed = threading.Event()


def _watchdog():
    """After Ctrl-C or SIGTERM: deliver the interrupt again whenever a library swallowed it (Python prints "Exception
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
    sys.stderr.write(f'\nautospace-nni: the main thread was still busy here (for a bug report):\n{_main_stack()}'
                     f'autospace-nni: interrupted; the run did not stop within {GRACE_S:g} s, so the process was '
                     'ended (rerun the same command)\n')
    sys.stderr.flush()
    os._exit(exit_status())


def _main_stack(depth: int = 8) -> str:
    """The innermost ``depth`` frames of the main thread's stack, as ``traceback`` writes them: where a library
    held on to the process after the interrupt."""
    import traceback
    frame = sys._current_frames().get(threading.main_thread().ident)
    return ''.join(traceback.format_stack(frame)[-depth:]) if frame is not None else '  (not found)\n'


def _handler(signum, frame):
    global _signum
    if _signum is None:   # a watchdog, so that a library that eats the interrupt cannot hold the terminal
        _signum = signal.Signals(signum)
        threading.Thread(target=_watchdog, daemon=True).start()
    signal.default_int_handler(signum, frame)   # raises KeyboardInterrupt, whichever signal it was


def _unraisable(hook):
    def quiet(unraisable):
        if _signum is not None and isinstance(unraisable.exc_value, KeyboardInterrupt):
            _swallowed.set()   # our interrupt, lost where Python cannot raise it: the watchdog sends it again
            return
        hook(unraisable)
    return quiet


@contextlib.contextmanager
def watching():
    """Turn Ctrl-C and SIGTERM into a recorded ``KeyboardInterrupt`` while the block runs (in the main thread;
    elsewhere a no-op). Blocks nest: the outermost one installs the handlers and puts the previous ones back."""
    global _signum, _depth, _generation
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _signum, _generation = None, _generation + 1
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
    """``fn`` run inside :func:`watching`, for library functions that run NNI experiments, so that where no
    command line watches, Ctrl-C or SIGTERM still raises ``KeyboardInterrupt`` out of ``fn``: NNI's ``run()``
    returns as if done (:func:`check` after it raises), and Lightning answers with ``sys.exit(1)`` (turned back
    into the interrupt). On the way out it stops the NNI managers that ``fn`` started and NNI left running."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with watching():
            before = _descendants()
            try:
                return fn(*args, **kwargs)
            except (KeyboardInterrupt, SystemExit) as e:
                if isinstance(e, SystemExit) and not requested():
                    raise
                reap_children(keep=before)   # another experiment of the caller's is left alone
                if isinstance(e, SystemExit):
                    raise KeyboardInterrupt from None
                raise
    return wrapper


def stopped(prog: str, hint: str) -> int:
    """After a command caught the interruption: stop the NNI managers left running, close progress bars, print
    one line (``PROG: interrupted; HINT``, or ``interrupted by SIGTERM``) and return :func:`exit_status`."""
    reap_children()   # an NNI manager that the signal caught while it started (NNI 3.0)
    close_progress_bars()   # the message on a line of its own, even after a half-drawn bar
    by = '' if received() == signal.SIGINT else f' by {received().name}'
    print(f'{prog}: interrupted{by}; {hint}', file=sys.stderr)
    return exit_status()


def _descendants() -> set:
    import psutil
    return {c.pid for c in psutil.Process().children(recursive=True)}


def reap_children(marker: str = 'nni_node', timeout: float = 10.0, *, keep=()) -> list:
    """Stop this process's descendants whose command line holds ``marker`` (terminate, then kill after
    ``timeout`` seconds), except the PIDs in ``keep``; returns their PIDs."""
    import psutil
    found = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in keep:
            continue
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
