"""Workarounds that have to reach inside NNI 3.0 (its last release) while it runs, each scoped to a ``with``
block so that NNI is left as it was outside it. The README's "Known NNI 3.0 issues" lists them."""

import contextlib
import functools

#: how long (seconds, about one try a second) a newly started NNI manager may take to answer its first call
MANAGER_START_TIMEOUT_S = 60


@contextlib.contextmanager
def patient_manager_start(timeout_s: int = MANAGER_START_TIMEOUT_S):
    """Give the NNI manager ``timeout_s`` seconds to come up.

    NNI 3.0's launcher (``nni.experiment.launcher.start_experiment``) asks the Node.js manager it has just
    started for ``/check-status`` three times, one second apart, and then fails the experiment with
    "Connection refused". On a busy machine (two cores with a training beside it) Node.js takes longer than
    that to listen. Inside this block the same check runs with ``timeout_s`` tries; a manager that really
    died still fails, after ``timeout_s`` seconds.
    """
    if not isinstance(timeout_s, int) or timeout_s < 3:
        raise ValueError(f'timeout_s must be an integer >= 3 (NNI\'s own tries), got {timeout_s!r}')
    from nni.experiment import launcher
    original = launcher._check_rest_server
    launcher._check_rest_server = functools.partial(original, retry=timeout_s)
    try:
        yield
    finally:
        launcher._check_rest_server = original
