"""Spaces: skeletons and presets (:mod:`.skeleton`), fixed networks (:mod:`.network`), the exploration
space (:mod:`.exploration`), the supernet layer (:mod:`.supernet`) and learned spaces (:mod:`.learned`).
The last three import NNI and are not loaded here."""

from .skeleton import Skeleton, Stage, BlockSpec, SKELETON_PRESETS, ZERO, reference_cell
from .network import Architecture, SkeletonNet, NetworkCost, fixed_cost, choice_cost

__all__ = ['Skeleton', 'Stage', 'BlockSpec', 'SKELETON_PRESETS', 'ZERO', 'reference_cell', 'Architecture',
           'SkeletonNet', 'NetworkCost', 'fixed_cost', 'choice_cost']
