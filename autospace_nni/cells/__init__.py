"""Cells: the genome and its grammar (:mod:`.genome`), the primitive registry (:mod:`.ops`), the built
block (:mod:`.block`) and the analytic cost (:mod:`.cost`)."""

from .ops import PRIMITIVES, Primitive, register_primitive, ACTIVATIONS
from .genome import Cell, CellError, DEFAULT_OPS, EXPAND_CHOICES, ACT_CHOICES, SE_CHOICES, MAX_NODES
from .block import CellBlock
from .cost import CellCost, cell_cost, count_by_hooks

__all__ = ['PRIMITIVES', 'Primitive', 'register_primitive', 'ACTIVATIONS', 'Cell', 'CellError', 'DEFAULT_OPS',
           'EXPAND_CHOICES', 'ACT_CHOICES', 'SE_CHOICES', 'MAX_NODES', 'CellBlock', 'CellCost', 'cell_cost',
           'count_by_hooks']
