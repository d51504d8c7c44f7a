"""The AutoSpace strategy (:mod:`.autospace`) and its per-group populations (:mod:`.evolution`)."""

from .evolution import CellSampler, GroupPopulation, Member
from .autospace import AutoSpace, AutoSpaceLightningModule

__all__ = ['AutoSpace', 'AutoSpaceLightningModule', 'CellSampler', 'GroupPopulation', 'Member']
