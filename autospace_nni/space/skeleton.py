"""Skeletons: the part of a network a human fixes (stem, stage widths/depths/strides, head, input), the
layer groups that share a cell population, and the presets."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from ..cells.cost import NetworkCost, conv_cost
from ..cells.genome import Cell
from ..cells.ops import ACTIVATIONS, out_size
from ..errors import SkeletonError
from ..limits import MAX_CLASSES, MAX_DEPTH, MAX_IN_CHANNELS, MAX_SIDE, MAX_WIDTH

__all__ = ['Stage', 'Skeleton', 'BlockSpec', 'SKELETON_PRESETS', 'ZERO', 'reference_cell']

#: the candidate name of "skip this block" (identity), allowed in non-first blocks of a stage
ZERO = 'zero'

GROUPINGS = ('stage', 'layer')


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class Stage:
    width: int
    depth: int
    stride: int


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One searchable block: its label, shapes and the layer group whose population it draws from."""
    label: str
    stage: int
    index: int
    c_in: int
    c_out: int
    stride: int
    height: int
    width: int
    group: str
    zero_allowed: bool
    #: an adopted model space's fixed candidates here: ``(name, madds, params)`` measured on this block
    fixed: Tuple[Tuple[str, int, int], ...] = ()

    def fixed_cost(self, name: str) -> Tuple[int, int]:
        for n, madds, params in self.fixed:
            if n == name:
                return madds, params
        raise KeyError(f'block {self.label} has no fixed candidate {name!r}')

    @property
    def out_hw(self) -> Tuple[int, int]:
        return out_size(self.height, self.stride), out_size(self.width, self.stride)


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """A network skeleton. Stages are numbered from 1; block labels are ``s{stage}_b{block}``.

    ``grouping='stage'`` gives each stage two layer groups, ``s{n}_first`` and ``s{n}_rest``, as in the
    authors' released space; ``grouping='layer'`` gives every block its own group (named like the block).
    """
    name: str
    input_shape: Tuple[int, int, int]
    num_classes: int
    stem_width: int
    stem_stride: int
    stages: Tuple[Stage, ...]
    head_width: int
    first_block: Optional[str] = 'e1_relu6:0-1=dw3x3'
    first_block_width: int = 16
    act: str = 'relu6'
    grouping: str = 'stage'
    allow_zero: bool = True
    dropout: float = 0.0
    #: MobileNetV3's head: a fully connected layer of this width (with ``act``) between the pooling and the
    #: classifier; 0, the default, goes straight from the pooled 1x1-conv features to the classifier
    head_fc: int = 0
    #: the batch-norm epsilon of every layer (torchvision's MobileNetV3 uses 1e-3)
    bn_eps: float = 1e-5

    def __post_init__(self):
        # strict types: a skeleton usually arrives from JSON, where 2.5 or "16" must not pass as a width
        if not isinstance(self.name, str) or not self.name:
            raise SkeletonError(f'skeleton name must be a non-empty string, got {self.name!r}')
        if not isinstance(self.input_shape, (list, tuple)) or not all(_is_int(v) for v in self.input_shape):
            raise SkeletonError(f'input_shape must be three integers (channels, height, width), got {self.input_shape!r}')
        object.__setattr__(self, 'input_shape', tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, 'stages', tuple(s if isinstance(s, Stage) else Stage(**s) for s in self.stages))
        for field in ('num_classes', 'stem_width', 'stem_stride', 'head_width', 'first_block_width', 'head_fc'):
            if not _is_int(getattr(self, field)):
                raise SkeletonError(f'{field} must be an integer, got {getattr(self, field)!r}')
        if self.stem_stride not in (1, 2):
            raise SkeletonError(f'stem_stride must be 1 or 2, got {self.stem_stride}')
        if self.first_block_width < 1:
            raise SkeletonError(f'first_block_width must be >= 1, got {self.first_block_width}')
        if self.head_fc < 0:
            raise SkeletonError(f'head_fc must be >= 0 (0: no hidden fully connected layer), got {self.head_fc}')
        if isinstance(self.bn_eps, bool) or not isinstance(self.bn_eps, (int, float)) or not 0 < self.bn_eps < 1:
            raise SkeletonError(f'bn_eps must be a number in (0, 1), got {self.bn_eps!r}')
        if not isinstance(self.allow_zero, bool):
            raise SkeletonError(f'allow_zero must be true or false, got {self.allow_zero!r}')
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise SkeletonError(f'dropout must be a number in [0, 1), got {self.dropout!r}')
        if self.first_block is not None and not isinstance(self.first_block, str):
            raise SkeletonError(f'first_block must be a cell text or null, got {self.first_block!r}')
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise SkeletonError(f'input_shape must be (channels, height, width), got {self.input_shape}')
        if self.grouping not in GROUPINGS:
            raise SkeletonError(f'grouping must be one of {GROUPINGS}, got {self.grouping!r}')
        if self.act not in ACTIVATIONS:
            raise SkeletonError(f'unknown activation {self.act!r}')
        if not self.stages:
            raise SkeletonError('a skeleton needs at least one stage')
        for i, s in enumerate(self.stages, 1):
            if not all(_is_int(v) for v in (s.width, s.depth, s.stride)):
                raise SkeletonError(f'stage {i}: width, depth and stride must be integers, got {s}')
            if s.width < 1 or s.depth < 1 or s.stride not in (1, 2):
                raise SkeletonError(f'stage {i}: width and depth must be >= 1 and stride 1 or 2, got {s}')
        if self.num_classes < 1 or self.stem_width < 1 or self.head_width < 1:
            raise SkeletonError('num_classes, stem_width and head_width must be >= 1')
        # the bounds of autospace_nni.limits, before anything is priced or built
        widths = {'stem_width': self.stem_width, 'head_width': self.head_width, 'head_fc': self.head_fc,
                  'first_block_width': self.first_block_width,
                  **{f'stage {i} width': s.width for i, s in enumerate(self.stages, 1)}}
        for what, (value, limit) in {**{k: (v, MAX_WIDTH) for k, v in widths.items()},
                                     'input channels': (self.input_shape[0], MAX_IN_CHANNELS),
                                     'input height': (self.input_shape[1], MAX_SIDE),
                                     'input width': (self.input_shape[2], MAX_SIDE),
                                     'num_classes': (self.num_classes, MAX_CLASSES),
                                     **{f'stage {i} depth': (s.depth, MAX_DEPTH)
                                        for i, s in enumerate(self.stages, 1)}}.items():
            if value > limit:
                raise SkeletonError(f'{what} {value} is over the limit of {limit} (autospace_nni.limits)')
        if self.first_block is not None:
            Cell.parse(self.first_block)

    # ----- structure -----
    @property
    def first_cell(self) -> Optional[Cell]:
        return None if self.first_block is None else Cell.parse(self.first_block)

    def stem_out_hw(self) -> Tuple[int, int]:
        return out_size(self.input_shape[1], self.stem_stride), out_size(self.input_shape[2], self.stem_stride)

    def blocks(self) -> List[BlockSpec]:
        h, w = self.stem_out_hw()
        c = self.first_block_width if self.first_block is not None else self.stem_width
        specs = []
        for si, stage in enumerate(self.stages, 1):
            for bi in range(stage.depth):
                stride = stage.stride if bi == 0 else 1
                label = f's{si}_b{bi}'
                if self.grouping == 'stage':
                    group = f's{si}_first' if bi == 0 else f's{si}_rest'
                else:
                    group = label
                zero_ok = self.allow_zero and bi > 0
                specs.append(BlockSpec(label, si, bi, c, stage.width, stride, h, w, group, zero_ok))
                h, w = out_size(h, stride), out_size(w, stride)
                c = stage.width
        return specs

    def groups(self) -> Dict[str, List[BlockSpec]]:
        out: Dict[str, List[BlockSpec]] = {}
        for b in self.blocks():
            out.setdefault(b.group, []).append(b)
        return out

    @property
    def labels(self) -> List[str]:
        return [b.label for b in self.blocks()]

    def final_hw(self) -> Tuple[int, int]:
        blocks = self.blocks()
        return blocks[-1].out_hw

    # ----- the Layout interface (autospace_nni.space.layout) -----
    kind = 'skeleton'

    def outside_cost(self) -> NetworkCost:
        """MAdds and params of everything outside the searchable blocks: stem, first block, head, classifier."""
        h, w = self.stem_out_hw()
        m, p = conv_cost(self.input_shape[0], self.stem_width, 3, h, w)
        if self.first_block is not None:
            c = self.first_cell.cost(self.stem_width, self.first_block_width, 1, h, w)
            m, p = m + c.madds, p + c.params
        fh, fw = self.final_hw()
        hm, hp = conv_cost(self.stages[-1].width, self.head_width, 1, fh, fw)
        m, p = m + hm, p + hp
        features = self.head_width
        if self.head_fc:
            m += features * self.head_fc
            p += features * self.head_fc + self.head_fc
            features = self.head_fc
        m += features * self.num_classes
        p += features * self.num_classes + self.num_classes
        return NetworkCost(m, p)

    def candidates_of(self, group: str) -> list:
        """A skeleton's blocks have no candidates of a user's: an empty list."""
        return []

    def user_name(self, group: str, cand) -> Optional[str]:
        """A skeleton's cells are named by their text: always ``None``."""
        return None

    def check_sample(self, sample) -> None:
        """Every sample of a skeleton's blocks is priced analytically: nothing to check."""

    # ----- (de)serialisation -----
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d['input_shape'] = list(self.input_shape)
        # fields added after the first documents were written are left out at their defaults, so that an
        # old skeleton's document stays byte for byte what it was
        for field in _LATER_FIELDS:
            if d[field] == getattr(Skeleton, field):     # the dataclass field's default
                del d[field]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'Skeleton':
        try:
            d = dict(d)
            d['stages'] = tuple(Stage(**s) for s in d['stages'])
            return cls(**d)
        except (TypeError, KeyError) as e:
            raise SkeletonError(f'malformed skeleton: {e}') from None

    def replace(self, **kw) -> 'Skeleton':
        return dataclasses.replace(self, **kw)

    @classmethod
    def preset(cls, name: str, **overrides) -> 'Skeleton':
        try:
            sk = SKELETON_PRESETS[name]
        except KeyError:
            raise SkeletonError(f'unknown skeleton {name!r}; presets: {", ".join(SKELETON_PRESETS)}') from None
        return dataclasses.replace(sk, **overrides) if overrides else sk


_LATER_FIELDS = ('head_fc', 'bn_eps')


def reference_cell(skeleton: Skeleton, *, kernel: int = 3, expand: int = 6) -> Cell:
    """MobileNetV2/ProxylessNAS MBConv (k3, e6 by default) written in the cell grammar."""
    return Cell(((0, 1, f'dw{kernel}x{kernel}'),), expand, skeleton.act, False)


SKELETON_PRESETS: Dict[str, Skeleton] = {
    # ProxylessNAS-mobile backbone (the authors' released configs, docs/method.md): ImageNet 224.
    'proxylessnas-mobile': Skeleton(
        name='proxylessnas-mobile', input_shape=(3, 224, 224), num_classes=1000, stem_width=32, stem_stride=2,
        stages=(Stage(24, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2), Stage(96, 4, 1), Stage(192, 4, 2),
                Stage(320, 1, 1)),
        head_width=1280),
    # The released ProxylessNAS-mobile network (and NNI's hub space) widens stage 1 to 32 channels; the
    # search skeleton above keeps the released configs' 24. Used by the published-network check; its batch
    # norms use NNI's hub epsilon (1e-3), so that the same weights give the same outputs.
    'proxylessnas-mobile-released': Skeleton(
        name='proxylessnas-mobile-released', input_shape=(3, 224, 224), num_classes=1000, stem_width=32,
        stem_stride=2,
        stages=(Stage(32, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2), Stage(96, 4, 1), Stage(192, 4, 2),
                Stage(320, 1, 1)),
        head_width=1280, bn_eps=1e-3),
    # MobileNetV2-1.0 backbone, for the published-network check of the cost model.
    'mobilenetv2': Skeleton(
        name='mobilenetv2', input_shape=(3, 224, 224), num_classes=1000, stem_width=32, stem_stride=2,
        stages=(Stage(24, 2, 2), Stage(32, 3, 2), Stage(64, 4, 2), Stage(96, 3, 1), Stage(160, 3, 2),
                Stage(320, 1, 1)),
        head_width=1280, allow_zero=False),
    # EfficientNet-B0 (torchvision's efficientnet_b0): swish throughout, MBConv1 k3 with SE as the fixed first
    # block, the seven stages of the paper's table 1 (the first is the fixed block).
    'efficientnet-b0': Skeleton(
        name='efficientnet-b0', input_shape=(3, 224, 224), num_classes=1000, stem_width=32, stem_stride=2,
        first_block='e1_swish_sei:0-1=dw3x3', first_block_width=16,
        stages=(Stage(24, 2, 2), Stage(40, 2, 2), Stage(80, 3, 2), Stage(112, 3, 1), Stage(192, 4, 2),
                Stage(320, 1, 1)),
        head_width=1280, act='swish', dropout=0.2),
    # MnasNet-A1 (timm's semnasnet_100): ReLU, a separable conv as the fixed first block.
    'mnasnet-a1': Skeleton(
        name='mnasnet-a1', input_shape=(3, 224, 224), num_classes=1000, stem_width=32, stem_stride=2,
        first_block='e1_relu:0-1=dw3x3', first_block_width=16,
        stages=(Stage(24, 2, 2), Stage(40, 3, 2), Stage(80, 4, 2), Stage(112, 2, 1), Stage(160, 3, 2),
                Stage(320, 1, 1)),
        head_width=1280, act='relu'),
    # MobileNetV3-Large and -Small (torchvision's mobilenet_v3_large / _small): h-swish stem and head, the
    # hidden FC head (960 -> 1280, 576 -> 1024), batch-norm epsilon 1e-3. Small's first block has stride 2,
    # so it is a searchable stage of one block rather than the fixed stride-1 first block.
    'mobilenetv3-large': Skeleton(
        name='mobilenetv3-large', input_shape=(3, 224, 224), num_classes=1000, stem_width=16, stem_stride=2,
        first_block='e1_relu:0-1=dw3x3', first_block_width=16,
        stages=(Stage(24, 2, 2), Stage(40, 3, 2), Stage(80, 4, 2), Stage(112, 2, 1), Stage(160, 3, 2)),
        head_width=960, head_fc=1280, act='hswish', bn_eps=1e-3, dropout=0.2),
    'mobilenetv3-small': Skeleton(
        name='mobilenetv3-small', input_shape=(3, 224, 224), num_classes=1000, stem_width=16, stem_stride=2,
        first_block=None,
        stages=(Stage(16, 1, 2), Stage(24, 2, 2), Stage(40, 3, 2), Stage(48, 2, 1), Stage(96, 3, 2)),
        head_width=576, head_fc=1024, act='hswish', bn_eps=1e-3, dropout=0.2),
    # Fashion-MNIST sized: 28x28x1, no stem stride (28 -> 28 -> 14 -> 7 -> 4).
    'mobile-28': Skeleton(
        name='mobile-28', input_shape=(1, 28, 28), num_classes=10, stem_width=16, stem_stride=1,
        first_block_width=16,
        stages=(Stage(24, 2, 2), Stage(40, 3, 2), Stage(80, 3, 2), Stage(96, 2, 1)),
        head_width=512),
    # sklearn digits: 8x8x1, seconds per epoch.
    'tiny-8': Skeleton(
        name='tiny-8', input_shape=(1, 8, 8), num_classes=10, stem_width=8, stem_stride=1,
        first_block_width=8,
        stages=(Stage(16, 1, 1), Stage(24, 2, 2), Stage(32, 1, 2)),
        head_width=64),
}
