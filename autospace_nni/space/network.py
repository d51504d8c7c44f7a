"""Fixed networks on a skeleton: an *architecture* is one cell (or ``zero``) per searchable block.

The same :class:`SkeletonNet` frame carries fixed networks, NNI model spaces (blocks are LayerChoices)
and supernets (blocks are mixed layers), so a comparison between spaces changes only the candidates.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Dict, Mapping, Union

from torch import nn

from ..cells.cost import NetworkCost
from ..cells.fixed import FixedCandidate
from ..cells.genome import Cell
from ..cells.ops import ConvBNAct, make_activation
from ..errors import ArchError, CellError
from ..limits import check_build
from .skeleton import BlockSpec, Skeleton, ZERO

__all__ = ['SkeletonNet', 'Architecture', 'NetworkCost', 'fixed_cost', 'price', 'choice_cost', 'ZeroBlock']

Choice = Union[Cell, str]


class ZeroBlock(nn.Identity):
    """``zero``: the block is skipped (only where input and output shapes agree)."""


class SkeletonNet(nn.Module):
    """stem conv3x3 → fixed first block → one module per searchable block → head 1x1 → GAP → FC, with
    MobileNetV3's hidden FC (+ activation) before the classifier where the skeleton has ``head_fc``."""

    def __init__(self, skeleton: Skeleton, block_factory: Callable[[BlockSpec], nn.Module]):
        super().__init__()
        sk = skeleton
        self.stem = ConvBNAct(sk.input_shape[0], sk.stem_width, 3, sk.stem_stride, act=sk.act)
        if sk.first_block is not None:
            self.first = sk.first_cell.build(sk.stem_width, sk.first_block_width, 1)
        else:
            self.first = nn.Identity()
        specs = sk.blocks()
        self.blocks = nn.Sequential(*[block_factory(spec) for spec in specs])
        self.head = ConvBNAct(specs[-1].c_out, sk.head_width, 1, act=sk.act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_fc = (nn.Sequential(nn.Linear(sk.head_width, sk.head_fc), make_activation(sk.act))
                        if sk.head_fc else None)
        self.dropout = nn.Dropout(sk.dropout) if sk.dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(sk.head_fc or sk.head_width, sk.num_classes)
        if sk.bn_eps != Skeleton.bn_eps:     # not batch norm's own default
            set_bn_eps(self, sk.bn_eps)

    def forward(self, x):
        x = self.blocks(self.first(self.stem(x)))
        x = self.pool(self.head(x)).flatten(1)
        if self.head_fc is not None:
            x = self.head_fc(x)
        return self.classifier(self.dropout(x))


def set_bn_eps(module: nn.Module, eps: float) -> None:
    """Set the epsilon of every batch norm in ``module``, the parameter-free activation twins of a supernet's
    weight pools (:class:`~autospace_nni.space.supernet.SuperCell`, not submodules) included."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = eps
        for twin in getattr(m, '_twins', {}).values():
            set_bn_eps(twin, eps)


def fixed_cost(layout) -> NetworkCost:
    """MAdds and params of everything outside the searchable blocks (``layout.outside_cost()``)."""
    return layout.outside_cost()


def price(layout, choices: Mapping[str, object]) -> NetworkCost:
    """Analytic MAdds and params of a network on ``layout`` (a :class:`~autospace_nni.space.layout.Layout`):
    everything outside its blocks, plus ``choices[label]`` (a cell, a fixed candidate or ``zero``) in each."""
    m, p = layout.outside_cost()
    for spec in layout.blocks():
        c = choice_cost(choices[spec.label], spec)
        m, p = m + c.madds, p + c.params
    return NetworkCost(m, p)


def choice_cost(choice: Choice, spec: BlockSpec) -> NetworkCost:
    if isinstance(choice, str) and choice == ZERO:
        return NetworkCost(0, 0)
    if isinstance(choice, FixedCandidate):
        return NetworkCost(*spec.fixed_cost(choice.name))
    c = choice.cost(spec.c_in, spec.c_out, spec.stride, spec.height, spec.width)
    return NetworkCost(c.madds, c.params)


def build_choice(choice: Choice, spec: BlockSpec) -> nn.Module:
    if isinstance(choice, str) and choice == ZERO:
        return ZeroBlock()
    return choice.build(spec.c_in, spec.c_out, spec.stride)


def _as_choice(value, spec: BlockSpec) -> Choice:
    if isinstance(value, Cell):
        return value
    if value == ZERO:
        if not spec.zero_allowed:
            raise ArchError(f'block {spec.label} cannot be "zero": only non-first blocks of a stage may be '
                            'skipped (and only when the skeleton allows it)')
        return ZERO
    try:
        return Cell.parse(value)
    except CellError as e:
        raise ArchError(f'block {spec.label}: {e}') from None


@dataclasses.dataclass
class Architecture:
    """A fixed network: a skeleton plus one cell (or ``"zero"``) per searchable block label."""
    skeleton: Skeleton
    choices: Dict[str, Choice]

    def __post_init__(self):
        specs = {b.label: b for b in self.skeleton.blocks()}
        missing = [l for l in specs if l not in self.choices]
        extra = [l for l in self.choices if l not in specs]
        if missing or extra:
            raise ArchError(f'architecture does not fit skeleton {self.skeleton.name!r}: '
                            f'missing blocks {missing or "none"}, unknown blocks {extra or "none"}')
        self.choices = {l: _as_choice(self.choices[l], specs[l]) for l in specs}

    @classmethod
    def uniform(cls, skeleton: Skeleton, cell: Cell) -> 'Architecture':
        return cls(skeleton, {b.label: cell for b in skeleton.blocks()})

    def cost(self) -> NetworkCost:
        return price(self.skeleton, self.choices)

    def check_build(self) -> None:
        """Refuse (:class:`~autospace_nni.errors.ResourceError`) a network too large to build
        (:mod:`autospace_nni.limits`)."""
        check_build(self.cost().params, f'the network on skeleton {self.skeleton.name!r}')

    def build(self) -> SkeletonNet:
        self.check_build()
        return SkeletonNet(self.skeleton, lambda spec: build_choice(self.choices[spec.label], spec))

    @property
    def sample(self) -> Dict[str, str]:
        """The NNI ``Sample`` dict of this architecture: label → candidate name (cell text or ``zero``)."""
        return {l: str(c) for l, c in self.choices.items()}

    def to_dict(self) -> dict:
        return {'skeleton': self.skeleton.to_dict(), 'sample': self.sample}

    @classmethod
    def from_dict(cls, d: Mapping) -> 'Architecture':
        if not isinstance(d, Mapping) or 'skeleton' not in d or 'sample' not in d:
            raise ArchError('an architecture file needs "skeleton" and "sample" keys')
        sk = d['skeleton']
        skeleton = Skeleton.preset(sk) if isinstance(sk, str) else Skeleton.from_dict(sk)
        return cls(skeleton, dict(d['sample']))

    @classmethod
    def load(cls, path) -> 'Architecture':
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise ArchError(f'architecture file {path} does not exist') from None
        except json.JSONDecodeError as e:
            raise ArchError(f'architecture file {path} is not valid JSON: {e}') from None
        return cls.from_dict(d)
