"""timm's block strings, both ways: a timm-style architecture definition reads into a skeleton plus one cell
per block, and a network on a skeleton writes back as one, where its cells are expressible.

A timm definition is a list of stages, each a list of block strings such as ``ds_r1_k3_s1_e1_c16_se0.25``
or ``ir_r2_k3_s2_e6_c24_se0.25_nre`` (type, then ``r`` repeats, ``k`` depthwise kernel, ``s`` stride, ``e``
expand ratio, ``c`` output channels, ``se`` squeeze-excite ratio, ``n`` activation, ``noskip``). What maps:

* ``ir`` (inverted residual) is the cell ``e<E>_<act>[SE]:0-1=dw<K>x<K>``; ``ds`` (depthwise separable) is the
  same cell with ``e1``. ``e`` is a ratio of the block input, as in timm; a fractional one rounds the
  expanded width with ``make_divisible`` as timm does.
* ``se0.25`` is the SE of the model's style: ``in`` (timm's EfficientNet and MnasNet reduce from the block
  input) or ``v3`` (its MobileNetV3: from the expanded width, rounded to 8, ReLU inside, hard-sigmoid gate).
* ``n`` is ``re`` (relu), ``r6`` (relu6), ``hs`` (hswish) or ``sw`` (swish); without it, the model's act.
* The first stage is the skeleton's fixed first block when it is one stride-1 block; each other stage is a
  skeleton stage (its first block takes the stride, the others must have stride 1 and its width).
* A final ``cn_r1_k1_s1_c<C>`` stage is MobileNetV3's head conv of C channels, with ``num_features`` the
  hidden FC after the pooling (``head_fc``); otherwise ``num_features`` is the head conv's width.

Anything else (other SE ratios, ``noskip`` where a shortcut applies, a multi-edge cell, other block types)
raises :class:`~autospace_nni.errors.ArchError` naming the block; nothing is approximated.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ..cells.genome import Cell
from ..errors import ArchError, CellError
from .network import Architecture
from .skeleton import Skeleton, Stage, ZERO

__all__ = ['from_timm', 'to_timm', 'ACT_CODES']

#: timm's activation codes (the ``n`` option) and our activation genes
ACT_CODES = {'re': 'relu', 'r6': 'relu6', 'hs': 'hswish', 'sw': 'swish'}
_CODE_OF = {act: code for code, act in ACT_CODES.items()}
_SE_STYLES = ('in', 'v3')
_KERNELS = (3, 5, 7)


def _number(text: str, what: str, block: str) -> float:
    """A number of a block string (a whole one becomes an integer ratio in :class:`Cell` itself)."""
    try:
        return float(text)
    except ValueError:
        raise ArchError(f'block {block!r}: bad {what} {text!r}') from None


def _parse_block(text: str, act: str, se_style: str) -> Tuple[int, int, int, Optional[Cell], bool]:
    """``(repeats, stride, out_channels, cell or None for cn, noskip)`` of one block string."""
    if not isinstance(text, str) or '_' not in text:
        raise ArchError(f'block {text!r} is not a timm block string such as "ir_r2_k3_s2_e6_c24"')
    kind, *tokens = text.split('_')
    opts, block_act, noskip = {}, act, False
    for token in tokens:
        if token == 'noskip':
            noskip = True
        elif token.startswith('n') and token != 'noskip':
            if token[1:] not in ACT_CODES:
                raise ArchError(f'block {text!r}: activation {token[1:]!r} has no gene; known: {", ".join(ACT_CODES)}')
            block_act = ACT_CODES[token[1:]]
        else:
            m = re.fullmatch(r'([a-z]+)(\d.*)', token)
            if not m or m.group(1) not in ('r', 'k', 's', 'e', 'c', 'se'):
                raise ArchError(f'block {text!r}: option {token!r} cannot be expressed in the cell grammar')
            opts[m.group(1)] = m.group(2)
    missing = [k for k in ('r', 's', 'c') + (('k',) if kind != 'cn' else ()) if k not in opts]
    if missing:
        raise ArchError(f'block {text!r} lacks option(s) {", ".join(missing)}')
    repeats, stride, width = int(opts['r']), int(opts['s']), int(opts['c'])
    if kind == 'cn':
        return repeats, stride, width, None, noskip
    if kind not in ('ir', 'ds'):
        raise ArchError(f'block {text!r}: block type {kind!r} has no cell (ir, ds and a final cn do)')
    kernel = int(opts['k'])
    if kernel not in _KERNELS:
        raise ArchError(f'block {text!r}: kernel {kernel} has no primitive (dw3x3, dw5x5, dw7x7)')
    expand = 1 if kind == 'ds' else _number(opts.get('e', '1'), 'expand ratio', text)
    if kind == 'ir' and expand == 1:
        raise ArchError(f'block {text!r}: timm\'s ir with e1 keeps a 1x1 expansion conv; the cell e1 has none '
                        '(write it as ds)')
    se = float(opts.get('se', 0))
    if se not in (0.0, 0.25):
        raise ArchError(f'block {text!r}: SE ratio {se} is not expressible (the grammar\'s SE reduces by 4)')
    try:
        cell = Cell(((0, 1, f'dw{kernel}x{kernel}'),), expand, block_act, se > 0, se_style if se else 'exp')
    except CellError as e:
        raise ArchError(f'block {text!r}: {e}') from None
    return repeats, stride, width, cell, noskip


def _check_width(cell: Cell, c_in: int, where: str) -> None:
    """timm rounds every expanded width with make_divisible; an integer ratio here is exact, so the two agree
    only where ``c_in * expand`` is already a multiple of 8."""
    if isinstance(cell.expand, int) and cell.expand > 1 and (c_in * cell.expand) % 8:
        raise ArchError(f'{where}: {c_in} x {cell.expand} = {c_in * cell.expand} channels, which timm rounds to a '
                        'multiple of 8; not expressible exactly')


def from_timm(arch_def: Sequence[Sequence[str]], *, name: str = 'timm', input_shape=(3, 224, 224),
              num_classes: int = 1000, stem_width: int = 32, num_features: int = 1280, act: str = 'relu',
              se_style: str = 'in', bn_eps: float = 1e-5, dropout: float = 0.0, grouping: str = 'stage'
              ) -> Architecture:
    """Read a timm architecture definition (a list of stages of block strings) into an
    :class:`~autospace_nni.space.network.Architecture`: a skeleton plus one cell per block. ``act`` is the
    model's activation (stem, head and blocks without ``n``); ``se_style`` is how its ``se0.25`` reduces."""
    if se_style not in _SE_STYLES:
        raise ArchError(f'se_style must be one of {_SE_STYLES}, got {se_style!r}')
    stages = [[_parse_block(b, act, se_style) for b in stage] for stage in arch_def]
    if not stages or not all(stages):
        raise ArchError('a timm definition is a non-empty list of non-empty stages')
    head_width, head_fc = num_features, 0
    if stages[-1][0][3] is None:              # MobileNetV3's final 1x1 ConvBnAct: the head conv
        (_, _, head_width, _, _), = stages.pop()
        head_fc = num_features
    if any(b[3] is None for stage in stages for b in stage):
        raise ArchError('a cn block is only expressible as the last stage (the head conv)')
    first, first_width = None, 16
    c = stem_width
    if len(stages[0]) == 1 and stages[0][0][0] == 1 and stages[0][0][1] == 1:
        (_, _, first_width, cell, noskip), = stages.pop(0)
        if noskip and c == first_width:
            raise ArchError('the first block has noskip, but its input and output shapes agree: our blocks add '
                            'the shortcut wherever they do')
        first, c = str(cell), first_width
    sk_stages, choices = [], []
    for si, stage in enumerate(stages, 1):
        # a string's stride applies to its first repeat, as in timm
        blocks = [(stride if r == 0 else 1, w, cell, noskip)
                  for repeats, stride, w, cell, noskip in stage for r in range(repeats)]
        width = blocks[0][1]
        for bi, (stride, w, cell, noskip) in enumerate(blocks):
            c_in = c if bi == 0 else width
            if bi and (stride != 1 or w != width):
                raise ArchError(f'stage {si}: block {bi} has stride {stride} and {w} channels; a skeleton stage '
                                f'strides only in its first block and keeps one width ({width}): split the stage')
            if noskip and stride == 1 and c_in == w:
                raise ArchError(f'stage {si}, block {bi}: noskip where the shapes agree is not expressible (our '
                                'blocks add the shortcut wherever they can)')
            _check_width(cell, c_in, f'stage {si}, block {bi}')
            choices.append((f's{si}_b{bi}', cell))
        c = width
        sk_stages.append(Stage(width, len(blocks), blocks[0][0]))
    skeleton = Skeleton(name=name, input_shape=tuple(input_shape), num_classes=num_classes, stem_width=stem_width,
                        stem_stride=2, stages=tuple(sk_stages), head_width=head_width, first_block=first,
                        first_block_width=first_width, act=act, head_fc=head_fc, bn_eps=bn_eps, dropout=dropout,
                        grouping=grouping)
    return Architecture(skeleton, dict(choices))


def _block_string(cell: Cell, repeats: int, stride: int, width: int, act: str, label: str) -> str:
    if len(cell.edges) != 1 or cell.edges[0][:2] != (0, 1) or not re.fullmatch(r'dw[357]x[357]', cell.edges[0][2]) \
            or cell.edges[0][2][2] != cell.edges[0][2][4]:
        raise ArchError(f'block {label}: cell {cell} is not expressible as a timm block (only one depthwise '
                        'conv edge, 0-1=dw3x3/dw5x5/dw7x7, is)')
    kernel = cell.edges[0][2][2]
    if cell.se and cell.se_style not in _SE_STYLES:
        raise ArchError(f'block {label}: cell {cell} has the grammar\'s own SE (_se); timm\'s se0.25 is _sei or '
                        '_sev3')
    kind = 'ds' if cell.expand == 1 else 'ir'
    text = f'{kind}_r{repeats}_k{kernel}_s{stride}_e{cell.expand!r}_c{width}' + ('_se0.25' if cell.se else '')
    return text + ('' if cell.act == act else f'_n{_CODE_OF[cell.act]}')


def to_timm(arch: Architecture) -> List[List[str]]:
    """Write ``arch`` as a timm definition: the fixed first block (if any) as the first stage, one stage per
    skeleton stage (``zero`` blocks left out, equal neighbours merged into one ``r`` string), and MobileNetV3's
    head conv as a final ``cn`` stage where the skeleton has ``head_fc``. Its model settings are the skeleton's:
    ``stem_size=stem_width``, ``num_features=head_fc or head_width``, ``act``, and one SE style for all
    blocks. Raises :class:`~autospace_nni.errors.ArchError` naming the first block that is not expressible."""
    sk = arch.skeleton
    # (the grammar's own SE style is refused block by block, below)
    styles = {c.se_style for c in list(arch.choices.values()) + [sk.first_cell]
              if isinstance(c, Cell) and c.se and c.se_style != 'exp'}
    if len(styles) > 1:
        raise ArchError(f'the blocks mix SE styles {sorted(styles)}; a timm model has one')
    if sk.stem_stride != 2:
        raise ArchError(f'timm stems have stride 2; skeleton {sk.name!r} has {sk.stem_stride}')
    out: List[List[str]] = []
    if sk.first_block is not None:
        out.append([_block_string(sk.first_cell, 1, 1, sk.first_block_width, sk.act, 'first block')])
    specs = sk.blocks()
    for si, stage in enumerate(sk.stages, 1):
        runs: List[list] = []       # [cell, repeats, stride, label]
        for spec in (s for s in specs if s.stage == si):
            cell = arch.choices[spec.label]
            if isinstance(cell, str) and cell == ZERO:
                continue
            if not isinstance(cell, Cell):
                raise ArchError(f'block {spec.label}: {cell} is not a cell')
            _check_width(cell, spec.c_in, f'block {spec.label}')
            if runs and runs[-1][0] == cell and spec.stride == 1:
                runs[-1][1] += 1
            else:
                runs.append([cell, 1, spec.stride, spec.label])
        out.append([_block_string(cell, n, stride, stage.width, sk.act, label) for cell, n, stride, label in runs])
    if sk.head_fc:
        out.append([f'cn_r1_k1_s1_c{sk.head_width}'])
    return out
