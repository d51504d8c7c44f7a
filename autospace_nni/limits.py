"""The bounds on what a document may ask the package to build.

A cell, skeleton, learned space or architecture arrives as text (a command line, a JSON file, an NNI trial's
parameters, a tuner's search space); a typo there (``e99999999``) must not try to allocate 25 GB. Two kinds of
bound, both checked before anything is built:

* **gene limits**, checked when a cell or skeleton is made (:class:`~autospace_nni.cells.genome.Cell`,
  :class:`~autospace_nni.space.skeleton.Skeleton`): :data:`MAX_EXPAND`, :data:`MAX_WIDTH`,
  :data:`MAX_SIDE`, :data:`MAX_IN_CHANNELS`, :data:`MAX_CLASSES`, :data:`MAX_DEPTH` (and the grammar's
  ``MAX_NODES``);
* a **memory estimate**, checked by every builder of weights (a cell's block, a supernet's weight pool, a
  fixed network, a learned space's NNI model space): its parameter count, priced analytically, times
  :data:`BYTES_PER_PARAM` must stay within :func:`max_build_bytes`.
"""

from __future__ import annotations

import os

from .errors import ResourceError

__all__ = ['MAX_EXPAND', 'MAX_WIDTH', 'MAX_SIDE', 'MAX_IN_CHANNELS', 'MAX_CLASSES', 'MAX_DEPTH', 'BYTES_PER_PARAM',
           'max_build_bytes', 'check_build']

#: largest expand ratio of a cell (the published mobile networks use at most 6)
MAX_EXPAND = 32
#: largest channel count of a skeleton's stem, stages, first block and head
MAX_WIDTH = 8192
#: largest input height or width, in pixels
MAX_SIDE = 4096
#: largest number of input channels
MAX_IN_CHANNELS = 64
#: largest number of classes
MAX_CLASSES = 100_000
#: most blocks in one stage
MAX_DEPTH = 64
#: bytes a parameter costs in training: the fp32 weight, its gradient and two optimizer moments
BYTES_PER_PARAM = 16


def max_build_bytes() -> int:
    """The memory bound of one build: ``AUTOSPACE_MAX_BUILD_BYTES`` if set, else half of this machine's RAM."""
    env = os.environ.get('AUTOSPACE_MAX_BUILD_BYTES')
    if env:
        return int(float(env))
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2
    except (ValueError, OSError, AttributeError):
        return 16 * 2 ** 30


def check_build(params: int, what: str) -> None:
    """Refuse to build ``what`` (one line) when its ``params`` would need more than :func:`max_build_bytes`."""
    need, limit = int(params) * BYTES_PER_PARAM, max_build_bytes()
    if need > limit:
        raise ResourceError(f'{what} has {int(params):,} parameters: about {need / 2 ** 30:.1f} GiB to train, over '
                            f'the {limit / 2 ** 30:.1f} GiB bound (AUTOSPACE_MAX_BUILD_BYTES); use a smaller cell '
                            'or skeleton')
