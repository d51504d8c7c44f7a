"""Analytic complexity of cells (pycls-style): priced from the genome and the shape, nothing is built.

Convention: MAdds are the multiply-accumulates of convolutions and linear layers (biases, batch norm,
activations and pooling cost nothing), which is how MobileNetV2 (300M) and ProxylessNAS (320M) are
counted. Params are all trainable parameters. :func:`count_by_hooks` measures a built module the same way,
and the tests hold the two equal for every primitive, stride and gene.
"""

from __future__ import annotations

from typing import NamedTuple, TYPE_CHECKING

import torch
from torch import nn

from .block import expanded_width, se_channels
from .ops import PRIMITIVES, out_size

if TYPE_CHECKING:
    from .genome import Cell

__all__ = ['CellCost', 'NetworkCost', 'cell_cost', 'count_by_hooks', 'conv_cost']


class CellCost(NamedTuple):
    madds: int
    params: int
    height: int
    width: int


class NetworkCost(NamedTuple):
    """MAdds and params of a network, or of a part of one."""
    madds: int
    params: int


def conv_cost(c_in: int, c_out: int, kernel: int, h_out: int, w_out: int, *, groups: int = 1,
              bn: bool = True, bias: bool = False) -> tuple[int, int]:
    madds = h_out * w_out * c_out * (c_in // groups) * kernel * kernel
    params = c_out * (c_in // groups) * kernel * kernel + (2 * c_out if bn else 0) + (c_out if bias else 0)
    return madds, params


#: a block's frame (expand, SE, projection) per layer shape, with a table of its edges' costs keyed by
#: (op, reads the block input): a population prices many cells on the same few layer shapes, and an edge's
#: cost depends only on op, channels, stride and output size. Primitives cannot be re-registered under a
#: name, so an entry never goes stale.
_FRAME_COSTS: dict = {}


def _frame_cost(c_in, c_out, expand, se, se_style, stride, height, width):
    """Everything of the block but its edges: expand, SE, projection; plus the output size."""
    c_e = expanded_width(c_in, expand)
    h, w = out_size(height, stride), out_size(width, stride)
    madds = params = 0
    if c_e != c_in:
        madds, params = conv_cost(c_in, c_e, 1, height, width)
    if se:
        r = se_channels(c_e, se_style, c_in)
        madds += 2 * c_e * r
        params += 2 * c_e * r + r + c_e
    m, p = conv_cost(c_e, c_out, 1, h, w)
    return madds + m, params + p, h, w, c_e


_new_tuple = tuple.__new__


def cell_cost(cell: 'Cell', c_in: int, c_out: int, stride: int, height: int, width: int) -> CellCost:
    frame_key = (c_in, c_out, cell.expand, cell.se, cell.se_style, stride, height, width)
    frame = _FRAME_COSTS.get(frame_key)
    if frame is None:
        frame = _FRAME_COSTS[frame_key] = (*_frame_cost(*frame_key), {})
    madds, params, h, w, c_e, edge_costs = frame
    for key in cell._priced_edges:
        mp = edge_costs.get(key)
        if mp is None:
            mp = edge_costs[key] = tuple(PRIMITIVES[key[0]].cost(c_e, stride if key[1] else 1, h, w))
        madds += mp[0]
        params += mp[1]
    # tuple.__new__ skips NamedTuple's keyword-parsing constructor; this is the hot path of evolution
    return _new_tuple(CellCost, (madds, params, h, w))


def count_by_hooks(module: nn.Module, input_shape, *, device='cpu') -> tuple[int, int]:
    """Measure ``(madds, params)`` of a built module by forward hooks on Conv2d and Linear, with a
    batch of one. The reference that the analytic accounting is tested against."""
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out):
        kh, kw = m.kernel_size
        total[0] += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out):
        total[0] += out[0].numel() * m.in_features

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, *input_shape, device=device))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in module.parameters())
    return total[0], params
