"""The AutoSpace strategy: the NNI glue (:mod:`.autospace`), its Lightning module (:mod:`.module`), the
ask/tell evolution loop (:mod:`.loop`), the per-group populations (:mod:`.evolution`), what may enter them
(:mod:`.admission`) and the checkpoint files (:mod:`.checkpoint`)."""

from .evolution import CellSampler, GroupPopulation, Member
from .loop import EvolutionLoop
from .module import AutoSpaceLightningModule
from .autospace import AutoSpace

__all__ = ['AutoSpace', 'AutoSpaceLightningModule', 'EvolutionLoop', 'CellSampler', 'GroupPopulation', 'Member']
