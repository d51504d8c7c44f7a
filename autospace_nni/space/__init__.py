"""Spaces: skeletons and presets (:mod:`.skeleton`), fixed networks on a skeleton (:mod:`.network`)."""

from .skeleton import Skeleton, Stage, BlockSpec, SKELETON_PRESETS, ZERO, reference_cell
from .network import Architecture, SkeletonNet, NetworkCost, fixed_cost, choice_cost

__all__ = ['Skeleton', 'Stage', 'BlockSpec', 'SKELETON_PRESETS', 'ZERO', 'reference_cell', 'Architecture',
           'SkeletonNet', 'NetworkCost', 'fixed_cost', 'choice_cost']
