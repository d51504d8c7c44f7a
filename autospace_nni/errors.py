"""The package's documented error types. All are ``ValueError`` subclasses with one-line messages that
name the problem and what to do; the CLI prints them without a traceback and exits with status 2."""

__all__ = ['AutoSpaceError', 'CellError', 'SkeletonError', 'ArchError', 'DatasetError', 'LearnedSpaceError',
           'NumericalFaultError', 'OptionError', 'NonFiniteError', 'Interrupted', 'ResourceError']


class AutoSpaceError(ValueError):
    """Base class of this package's user-facing errors. Its message is kept to one line whatever it wraps (the
    text of another exception can hold line breaks: a key of a corrupted document, say)."""

    def __init__(self, *args):
        super().__init__(*(' '.join(a.splitlines()) if isinstance(a, str) else a for a in args))


class CellError(AutoSpaceError):
    """A cell text or structure is invalid. The message names the bad token or edge."""


class SkeletonError(AutoSpaceError):
    """A skeleton is malformed or unknown."""


class ArchError(AutoSpaceError):
    """An architecture (a choice per block) does not fit its skeleton or space."""


class DatasetError(AutoSpaceError):
    """A dataset is unknown or missing; the message says how to get it."""


class LearnedSpaceError(AutoSpaceError):
    """A learned-space document is malformed, of another format version, or of another skeleton."""


class OptionError(AutoSpaceError):
    """An option value out of its range (or of the wrong type); ``option`` names it, and the message starts with
    it, so the command line can name the flag instead."""

    def __init__(self, option: str, rest: str):
        super().__init__(option + rest)
        self.option = option


class ResourceError(AutoSpaceError):
    """A network, block or weight pool whose build would exceed the memory bound (:mod:`autospace_nni.limits`);
    refused before anything is allocated."""


class NumericalFaultError(AutoSpaceError):
    """Training kept producing NaN/inf after the allowed rollbacks (or could not roll back)."""


class NonFiniteError(FloatingPointError):
    """Internal: a NaN or inf in a loss, a weight or α. :class:`~autospace_nni.strategy.autospace.AutoSpace`
    catches it and rolls back; only :class:`NumericalFaultError` reaches the user."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run during ``iteration``; the checkpoint of the boundary before it
    resumes the run exactly (the command line says how, and exits 130, or 143 after SIGTERM)."""

    def __init__(self, iteration: int):
        super().__init__(f'interrupted at iteration {iteration}')
        self.iteration = iteration
