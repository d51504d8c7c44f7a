"""The exploration space: a skeleton whose searchable blocks are cell choices, as an NNI ``ModelSpace``.

Each block is a :class:`CellChoice` labelled ``s{stage}_b{block}``. On its own (a dry run, or frozen)
it is the reference cell; the AutoSpace strategy's mutation hook swaps it for an
:class:`~autospace_nni.space.supernet.AutoSpaceMixedLayer` whose branches come from the block's
layer-group population. Any valid cell text is a valid choice, since the candidate set is what evolves.
"""

from __future__ import annotations

from typing import Optional

from nni.mutable import Categorical, SampleValidationError
from nni.nas.nn.pytorch import ModelSpace, MutableModule

from ..cells.genome import Cell
from ..errors import CellError
from .network import SkeletonNet, build_choice
from .skeleton import BlockSpec, Skeleton, ZERO, reference_cell

__all__ = ['CellChoice', 'ExplorationSpace']


class CellChoice(MutableModule):
    """One searchable block whose candidates are cells (and ``zero`` where the skeleton allows)."""

    def __init__(self, spec: BlockSpec, reference: Cell):
        super().__init__()
        self.spec = spec
        self.label = spec.label
        self.reference = reference
        values = [str(reference)] + ([ZERO] if spec.zero_allowed else [])
        self.choice = self.add_mutable(Categorical(values, label=spec.label))
        self.reference_block = build_choice(reference, spec)

    @classmethod
    def create_fixed_module(cls, sample, spec: BlockSpec, reference: Cell):
        return build_choice(_parse_choice(sample[spec.label], spec), spec)

    def check_contains(self, sample):
        if self.label not in sample:
            return SampleValidationError(f'{self.label} is missing from the sample')
        try:
            _parse_choice(sample[self.label], self.spec)
        except CellError as e:
            return SampleValidationError(f'{self.label}: {e}')
        return None

    def freeze(self, sample):
        return build_choice(_parse_choice(sample[self.label], self.spec), self.spec)

    def forward(self, x):
        return self.reference_block(x)


def _parse_choice(value, spec: BlockSpec):
    if value == ZERO:
        if not spec.zero_allowed:
            raise CellError(f'block {spec.label} cannot be skipped ("zero")')
        return ZERO
    return value if isinstance(value, Cell) else Cell.parse(value)


class ExplorationSpace(ModelSpace):
    """``ExplorationSpace(Skeleton.preset('tiny-8'))``: the skeleton with a :class:`CellChoice` per block.

    ``references`` maps a layer group to its reference cell; the default is MBConv k3 e6 in every group.
    A user's own NNI model space becomes one with :func:`autospace_nni.adopt`
    (:class:`~autospace_nni.space.adopted.AdoptedSpace`). Either way, what the strategy reads is the same:
    ``layout`` (:class:`~autospace_nni.space.layout.Layout`), ``references``, ``pin`` (the values of the
    mutables the evolution leaves alone; ``None`` when there are none) and ``base`` (the user's space).
    """
    pin: Optional[dict] = None
    base = None

    def __init__(self, skeleton: Skeleton, references: Optional[dict] = None):
        super().__init__()
        if isinstance(skeleton, str):
            skeleton = Skeleton.preset(skeleton)
        elif isinstance(skeleton, dict):
            skeleton = Skeleton.from_dict(skeleton)
        self.skeleton = self.layout = skeleton
        refs = {g: reference_cell(skeleton) for g in skeleton.groups()}
        for g, c in (references or {}).items():
            if g not in refs:
                raise CellError(f'reference given for unknown layer group {g!r}; groups: {", ".join(refs)}')
            refs[g] = c if isinstance(c, Cell) else Cell.parse(c)
        self.references = refs
        self.net = SkeletonNet(skeleton, lambda spec: CellChoice(spec, refs[spec.group]))

    def forward(self, x):
        return self.net(x)

    def cell_choices(self):
        return [m for m in self.modules() if isinstance(m, CellChoice)]
