"""Fixed candidates: a user's own ``LayerChoice`` candidate that the cell grammar cannot express.

When AutoSpace adopts a user's NNI model space, such a candidate (a plain conv, a pool, a custom block)
joins its layer's population as a member that competes on fitness but is never mutated. Its text form is
``fixed:<name>``, with ``<name>`` the candidate's name in the user's ``LayerChoice``; its module and its
measured cost live with the block it belongs to (:class:`~autospace_nni.space.skeleton.BlockSpec`
``fixed``), because the same name means different modules in different layers.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from ..errors import CellError
from .genome import Cell

__all__ = ['FixedCandidate', 'FIXED_PREFIX', 'parse_candidate', 'Candidate']

FIXED_PREFIX = 'fixed:'


@dataclasses.dataclass(frozen=True)
class FixedCandidate:
    name: str

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise CellError(f'a fixed candidate needs a non-empty name, got {self.name!r}')

    @property
    def key(self) -> str:
        return FIXED_PREFIX + self.name

    def __str__(self) -> str:
        return FIXED_PREFIX + self.name

    def __repr__(self) -> str:
        return f'FixedCandidate({self.name!r})'


Candidate = Union[Cell, FixedCandidate]


def parse_candidate(text: str) -> Candidate:
    """``fixed:<name>`` → :class:`FixedCandidate`, anything else → :meth:`Cell.parse`."""
    if isinstance(text, str) and text.startswith(FIXED_PREFIX):
        return FixedCandidate(text[len(FIXED_PREFIX):])
    return Cell.parse(text)
