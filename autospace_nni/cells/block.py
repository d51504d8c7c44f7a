"""The ``nn.Module`` of a cell: an MBConv-style block around the cell's DAG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence, Tuple

import torch
from torch import nn

from .ops import ConvBNAct, PRIMITIVES, SE_RATIO, make_activation, make_divisible

if TYPE_CHECKING:
    from .genome import Cell

__all__ = ['CellBlock', 'SqueezeExcite', 'se_channels', 'edge_name', 'run_cell', 'expanded_width', 'SE_STYLES']

#: squeeze-and-excitation styles (the cell text's ``_se``, ``_sei``, ``_sev3``): what the hidden width is
#: reduced from, how it is rounded, and the activation and gate inside
SE_STYLES = {
    'exp': 'hidden = int(expanded / 4); the cell activation; hard-sigmoid gate with hswish, else sigmoid',
    'in': 'hidden = int(input / 4) (EfficientNet, MnasNet); the cell activation; sigmoid gate',
    'v3': 'hidden = make_divisible(expanded // 4, 8) (MobileNetV3); ReLU; hard-sigmoid gate',
}


def expanded_width(c_in: int, expand) -> int:
    """The width of the expanded tensor: ``c_in * expand`` for an integer ratio (exact, as always), and
    ``make_divisible(c_in * expand, 8)`` for a fractional one (``e2.5``), as torchvision and timm round."""
    if isinstance(expand, int):
        return c_in * expand
    return make_divisible(c_in * expand, 8)


def se_channels(c_expanded: int, style: str = 'exp', c_in: int = 0) -> int:
    """The hidden width of the SE of ``style`` on a block of ``c_in`` input and ``c_expanded`` expanded channels."""
    if style == 'exp':
        return max(1, int(c_expanded * SE_RATIO))
    if style == 'in':
        return max(1, int(c_in * SE_RATIO))
    if style == 'v3':
        return make_divisible(c_expanded // 4, 8)
    raise ValueError(f'unknown SE style {style!r}; known: {", ".join(SE_STYLES)}')


def edge_name(src: int, dst: int) -> str:
    return f'e{src}_{dst}'


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation on ``channels`` (expanded) channels, of one of :data:`SE_STYLES`."""

    def __init__(self, channels: int, act: str, style: str = 'exp', c_in: int = 0):
        super().__init__()
        hidden = se_channels(channels, style, c_in)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = make_activation('relu' if style == 'v3' else act)
        self.expand = nn.Conv2d(hidden, channels, 1)
        hard = style == 'v3' or (style == 'exp' and act == 'hswish')
        self.gate = nn.Hardsigmoid() if hard else nn.Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


def run_cell(x: torch.Tensor, n_nodes: int, edges: Sequence[Tuple[int, int, str]], *, expand: Callable,
             edge: Callable, se: Callable, project: Callable, shortcut: bool) -> torch.Tensor:
    """The one interpreter of a cell: expand → DAG (node d = the sum of ``edge(s, d, op, node_s)`` over its
    incoming edges, in the cell's edge order) → SE → projection (+ the identity shortcut).

    The exported block (:class:`CellBlock`) and the supernet's weight pool
    (:class:`~autospace_nni.space.supernet.SuperCell`) both run through it and differ only in where the
    modules come from, so a trained path and its exported network compute the same function.
    """
    nodes = [expand(x)]
    for d in range(1, n_nodes):
        total = None
        for s, dd, op in edges:
            if dd == d:
                y = edge(s, d, op, nodes[s])
                total = y if total is None else total + y
        nodes.append(total)
    out = project(se(nodes[-1]))
    return out + x if shortcut else out


class CellBlock(nn.Module):
    """expand 1x1 (omitted when the expanded width equals the input's) → DAG on the expanded tensor → optional SE → 1x1 linear
    projection, plus the identity shortcut when ``stride == 1 and c_in == c_out``."""

    def __init__(self, cell: 'Cell', c_in: int, c_out: int, stride: int):
        super().__init__()
        self.cell_text = str(cell)
        self.stride = stride
        c_e = expanded_width(c_in, cell.expand)
        self.expand = ConvBNAct(c_in, c_e, 1, act=cell.act) if c_e != c_in else nn.Identity()
        self.edges = nn.ModuleDict()
        self._n_nodes, self._edges = cell.n_nodes, tuple(cell.edges)
        for s, d, op in cell.edges:
            self.edges[edge_name(s, d)] = PRIMITIVES[op].build(c_e, stride if s == 0 else 1, cell.act)
        self.se = SqueezeExcite(c_e, cell.act, cell.se_style, c_in) if cell.se else nn.Identity()
        self.project = ConvBNAct(c_e, c_out, 1, act=None)
        self.use_shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_cell(x, self._n_nodes, self._edges, expand=self.expand,
                        edge=lambda s, d, op, h: self.edges[edge_name(s, d)](h), se=self.se, project=self.project,
                        shortcut=self.use_shortcut)

    def extra_repr(self) -> str:
        return f'cell={self.cell_text}, stride={self.stride}'
