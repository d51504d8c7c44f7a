"""Fixed candidates: a user's own ``LayerChoice`` candidate that the cell grammar cannot express.

When AutoSpace adopts a user's NNI model space, such a candidate (a plain conv, a pool, a custom block)
joins its layer's population as a member that competes on fitness but is never mutated. Its text form is
``fixed:<name>``, with ``<name>`` the candidate's name in the user's ``LayerChoice``; its module and its
measured cost live with the block it belongs to (:class:`~autospace_nni.space.skeleton.BlockSpec`
``fixed``), because the same name means different modules in different layers.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Optional, Union

from torch import nn

from ..errors import CellError
from .genome import Cell

__all__ = ['FixedCandidate', 'FIXED_PREFIX', 'parse_candidate', 'Candidate', 'FixedModules']

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


class FixedModules(nn.Module):
    """One layer's fixed candidates: the user's modules by candidate name.

    The adopted choice and the supernet's mixed layer that replaces it hold the same instance, so a fixed
    candidate is trained in place across iterations. Names are stored as children ``c0, c1, ...`` because a
    candidate name may hold dots, which ``nn.Module`` refuses in child names.
    """

    def __init__(self, modules: Optional[Mapping[str, nn.Module]] = None):
        super().__init__()
        self._keys = {}
        for i, (name, module) in enumerate((modules or {}).items()):
            self._keys[str(name)] = f'c{i}'
            self.add_module(f'c{i}', module)

    def __contains__(self, name: str) -> bool:
        return name in self._keys

    def __getitem__(self, name: str) -> nn.Module:
        return getattr(self, self._keys[name])

    def __len__(self) -> int:
        return len(self._keys)

    def names(self) -> Iterator[str]:
        return iter(self._keys)

    def forward(self, *args, **kwargs):
        raise RuntimeError('FixedModules is a container; run one candidate with fixed[name](x)')
