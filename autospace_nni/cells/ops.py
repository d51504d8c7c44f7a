"""The registry of named primitives that may sit on a cell edge.

Every primitive maps a tensor of ``channels`` channels to a tensor of the same channels, at the
resolution ``ceil(H / stride)``. Each registration carries both the module builder and the analytic
cost, so that adding a primitive is one call to :func:`register_primitive` and the cost model can
never drift from the module.

Cost convention (as papers count MAdds): multiply-accumulates of convolutions and linear layers only;
batch norm, activations, pooling, additions and biases cost nothing. Params count every trainable
parameter, batch-norm affine terms included (what ``sum(p.numel())`` and torchinfo report).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Tuple

import torch
from torch import nn
# torchvision's own channel rounding (the nearest multiple of 8, one step up where rounding down loses
# more than 10%), reused rather than copied so that our widths can never drift from its models'
from torchvision.models._utils import _make_divisible as make_divisible

__all__ = [
    'ACTIVATIONS', 'PRIMITIVES', 'Primitive', 'register_primitive', 'primitive', 'make_activation',
    'ConvBNAct', 'out_size', 'SE_RATIO', 'make_divisible',
]

Cost = Tuple[int, int]  # (madds, params)

#: squeeze-and-excitation reduction: hidden channels = max(1, int(expanded_channels * SE_RATIO))
SE_RATIO = 0.25


def out_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded op with ``stride``: ``ceil(size / stride)``."""
    return (size - 1) // stride + 1


#: the activation genes: MobileNetV2 (relu6), MnasNet (relu), MobileNetV3 (relu and hswish), EfficientNet (swish)
ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    'relu6': lambda: nn.ReLU6(inplace=False),
    'hswish': lambda: nn.Hardswish(inplace=False),
    'relu': lambda: nn.ReLU(inplace=False),
    'swish': lambda: nn.SiLU(inplace=False),
}


def make_activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f'unknown activation {name!r}; known: {", ".join(ACTIVATIONS)}') from None


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation; ``act=None`` gives a linear projection."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, groups: int = 1, dilation: int = 1,
                 act: str | None = 'relu6', padding=None):
        if padding is None:
            k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
            padding = tuple(dilation * (kk - 1) // 2 for kk in k)
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
                  nn.BatchNorm2d(c_out)]
        if act is not None:
            layers.append(make_activation(act))
        super().__init__(*layers)


class Identity(nn.Module):
    """``skip``: identity, or plain subsampling when the edge is strided (costs nothing either way)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x
        return x[:, :, ::self.stride, ::self.stride]


class Zero(nn.Module):
    """``none``: the absent edge. Only used by supernets that need an explicit zero branch."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return torch.zeros_like(x)


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One named edge operation.

    ``build(channels, stride, act)`` returns the module; ``cost(channels, stride, h_out, w_out)`` returns
    ``(madds, params)`` with the convention of this module's docstring.
    """
    name: str
    build: Callable[[int, int, str], nn.Module]
    cost: Callable[[int, int, int, int], Cost]
    parametric: bool = True


PRIMITIVES: Dict[str, Primitive] = {}


def register_primitive(name: str, build: Callable[[int, int, str], nn.Module],
                       cost: Callable[[int, int, int, int], Cost], *, parametric: bool = True) -> Primitive:
    """Add a primitive to the grammar. Names must be lowercase identifiers without ``_`` at the ends,
    and must not contain ``,`` ``=`` ``:`` ``-`` or ``.`` (those delimit the cell text)."""
    if not name or not all(ch.isalnum() or ch == '_' for ch in name) or name != name.lower():
        raise ValueError(f'primitive name {name!r} must be a lowercase identifier')
    if name in PRIMITIVES:
        raise ValueError(f'primitive {name!r} is already registered')
    prim = Primitive(name, build, cost, parametric)
    PRIMITIVES[name] = prim
    return prim


def primitive(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(name) from None


def _bn_params(c: int) -> int:
    return 2 * c


def _dw(kernel: int, dilation: int = 1):
    def build(c: int, stride: int, act: str) -> nn.Module:
        return ConvBNAct(c, c, kernel, stride, groups=c, dilation=dilation, act=act)

    def cost(c: int, stride: int, h: int, w: int) -> Cost:
        return h * w * c * kernel * kernel, c * kernel * kernel + _bn_params(c)
    return build, cost


def _conv1x1_build(c: int, stride: int, act: str) -> nn.Module:
    return ConvBNAct(c, c, 1, stride, act=act)


def _conv1x1_cost(c: int, stride: int, h: int, w: int) -> Cost:
    return h * w * c * c, c * c + _bn_params(c)


def _sep_build(c: int, stride: int, act: str) -> nn.Module:
    # The stride goes on the 1x3 conv (kernel height 1, so a vertical stride is exact), then 3x1 at stride 1.
    return nn.Sequential(
        nn.Conv2d(c, c, (1, 3), stride, (0, 1), groups=c, bias=False),
        nn.Conv2d(c, c, (3, 1), 1, (1, 0), groups=c, bias=False),
        nn.BatchNorm2d(c),
        make_activation(act),
    )


def _sep_cost(c: int, stride: int, h: int, w: int) -> Cost:
    return 2 * h * w * c * 3, 2 * c * 3 + _bn_params(c)


def _free(c: int, stride: int, h: int, w: int) -> Cost:
    return 0, 0


register_primitive('none', lambda c, s, act: Zero(s), _free, parametric=False)
register_primitive('skip', lambda c, s, act: Identity(s), _free, parametric=False)
register_primitive('dw3x3', *_dw(3))
register_primitive('dw5x5', *_dw(5))
register_primitive('dw7x7', *_dw(7))
register_primitive('dil_dw3x3', *_dw(3, dilation=2))
register_primitive('conv1x1', _conv1x1_build, _conv1x1_cost)
register_primitive('avg_pool3x3', lambda c, s, act: nn.AvgPool2d(3, s, 1, count_include_pad=False), _free,
                   parametric=False)
register_primitive('max_pool3x3', lambda c, s, act: nn.MaxPool2d(3, s, 1), _free, parametric=False)
register_primitive('sep_dw1x3_3x1', _sep_build, _sep_cost)
