"""autospace-nni: AutoSpace (Zhou et al., ICCV 2021) for Microsoft NNI 3.0."""

__version__ = '0.1.0'

from .errors import AutoSpaceError, CellError, SkeletonError, ArchError, DatasetError, LearnedSpaceError
from .cells import Cell, register_primitive, PRIMITIVES
from .space import Skeleton, Stage, Architecture, reference_cell

__all__ = ['__version__', 'AutoSpaceError', 'CellError', 'SkeletonError', 'ArchError', 'DatasetError',
           'LearnedSpaceError', 'Cell', 'register_primitive', 'PRIMITIVES', 'Skeleton', 'Stage', 'Architecture',
           'reference_cell']
