"""Ctrl-C for the command line: remember that it was pressed, whoever catches the ``KeyboardInterrupt``.

Libraries under the commands answer Ctrl-C their own way: Lightning shuts down gracefully and calls
``sys.exit(1)``; NNI's experiment stops its manager and *returns* from ``run()`` as if it had finished.
:func:`watching` installs a SIGINT handler that records the press before raising ``KeyboardInterrupt`` as
Python's default handler does, so the command can still tell an interruption from an ending
(:func:`requested`, :func:`check`), and the CLI prints one line and exits 130 either way.

NNI 3.0 leaves its manager (a ``node`` process) running when Ctrl-C comes while the experiment starts: its
``stop()`` finds no manager handle yet. :func:`reap_children` stops such leftovers after an interruption, and a
watchdog delivers the interrupt again where a library swallowed it, and ends the process :data:`GRACE_S` seconds
after the first Ctrl-C if the libraries are still winding down.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time

__all__ = ['watching', 'requested', 'check', 'reap_children']

_requested = False


def requested() -> bool:
    """Whether Ctrl-C was pressed since :func:`watching` began."""
    return _requested


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed (after a library swallowed it)."""
    if _requested:
        raise KeyboardInterrupt


#: seconds the libraries get to wind down after Ctrl-C before the process ends anyway
GRACE_S = 60.0


_swallowed = threading.Event()


def _watchdog():
    """After Ctrl-C: deliver the interrupt again whenever a library swallowed it (Python prints "Exception
    ignored" and goes on, e.g. when it lands in logging's fork handler as NNI starts its manager), and end the
    process once :data:`GRACE_S` seconds have passed."""
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        if _swallowed.wait(timeout=0.5):
            _swallowed.clear()
            _thread.interrupt_main()
    reap_children()
    sys.stderr.write(f'\nautospace-nni: interrupted; the run did not stop within {GRACE_S:g} s, so the process was '
                     'ended (rerun the same command)\n')
    sys.stderr.flush()
    os._exit(130)


def _handler(signum, frame):
    global _requested
    if not _requested:   # a watchdog, so that a library that eats the interrupt cannot hold the terminal
        threading.Thread(target=_watchdog, daemon=True).start()
    _requested = True
    signal.default_int_handler(signum, frame)


def _unraisable(hook):
    def quiet(unraisable):
        if _requested and isinstance(unraisable.exc_value, KeyboardInterrupt):
            _swallowed.set()   # our interrupt, lost where Python cannot raise it: the watchdog sends it again
            return
        hook(unraisable)
    return quiet


@contextlib.contextmanager
def watching():
    """Record Ctrl-C presses while the block runs (in the main thread; elsewhere a no-op)."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    _swallowed.clear()
    previous, hook = signal.signal(signal.SIGINT, _handler), sys.unraisablehook
    sys.unraisablehook = _unraisable(hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook


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
