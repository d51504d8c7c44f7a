"""autospace-nni: AutoSpace (Zhou et al., ICCV 2021) for Microsoft NNI 3.0.

Light imports (cells, skeletons, errors) load eagerly; the NNI-dependent pieces (``AutoSpace``,
``ExplorationSpace``, ``LearnedSpace``, ...) load on first access, so ``autospace-nni cost`` stays fast.
"""

__version__ = '0.1.0'

from .errors import AutoSpaceError, CellError, SkeletonError, ArchError, DatasetError, LearnedSpaceError
from .cells import Cell, register_primitive, PRIMITIVES
from .space.skeleton import Skeleton, Stage, reference_cell
from .space.network import Architecture

_LAZY = {
    'AutoSpace': 'autospace_nni.strategy.autospace',
    'ExplorationSpace': 'autospace_nni.space.exploration',
    'CellChoice': 'autospace_nni.space.exploration',
    'LearnedSpace': 'autospace_nni.space.learned',
    'LearnedModelSpace': 'autospace_nni.space.learned',
    'ManualSpace': 'autospace_nni.space.learned',
    'manual_space': 'autospace_nni.space.learned',
    'AnalyticCostProfiler': 'autospace_nni.budget',
    'BudgetPenalty': 'autospace_nni.budget',
    'make_evaluator': 'autospace_nni.training',
    'load_dataset': 'autospace_nni.data',
}

__all__ = ['__version__', 'AutoSpaceError', 'CellError', 'SkeletonError', 'ArchError', 'DatasetError',
           'LearnedSpaceError', 'Cell', 'register_primitive', 'PRIMITIVES', 'Skeleton', 'Stage', 'Architecture',
           'reference_cell', *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
