"""The cell genome: a small DAG of named primitives plus per-cell genes, and its text grammar.

Grammar (in the spirit of timm's block strings; a cell is text a person can read, diff and paste)::

    cell   := genes ":" edge ("," edge)*
    genes  := "e" EXPAND "_" ACT ["_se" | "_sei" | "_sev3"]
    edge   := SRC "-" DST "=" OP

    e6_relu6:0-1=dw3x3                          MBConv k3 e6 (MobileNetV2's block)
    e3_hswish_se:0-1=dw5x5,0-2=skip,1-3=conv1x1,2-3=dw3x3
    e6_swish_sei:0-1=dw5x5                      EfficientNet-B0's MBConv6 k5 (SE from the block input)
    e2.5_hswish:0-1=dw3x3                       MobileNetV3's 80 -> 200 block

EXPAND is an integer ratio (the expanded width is exactly ``c_in * EXPAND``) or a decimal one such as
``2.5`` (the width is ``make_divisible(c_in * EXPAND, 8)``, torchvision's and timm's rounding). ACT is one
of ``relu6``, ``hswish``, ``relu`` and ``swish``. The SE token chooses the squeeze-and-excitation style
(:data:`~autospace_nni.cells.block.SE_STYLES`): ``_se`` reduces the expanded width by 4 (the grammar's
original rule), ``_sei`` the block input's (EfficientNet, MnasNet), ``_sev3`` is MobileNetV3's.

Node 0 is the (expanded) block input; the highest node index is the output. Node i sums its incoming
edges. Edges leaving node 0 carry the block's stride. ``none`` edges are simply absent. The text has
no whitespace and no shell metacharacters, so it can be pasted on a command line unquoted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from typing import Iterable, Sequence, Tuple, Union

from ..errors import CellError
from ..limits import MAX_EXPAND, check_build
from .block import CellBlock, SE_STYLES
from .cost import cell_cost as _cell_cost
from .ops import ACTIVATIONS, PRIMITIVES, SE_RATIO

__all__ = ['Cell', 'CellError', 'EXPAND_CHOICES', 'ACT_CHOICES', 'SE_CHOICES', 'DEFAULT_OPS', 'MAX_NODES',
           'SE_RATIO']

EXPAND_CHOICES: Tuple[int, ...] = (1, 3, 6)
ACT_CHOICES: Tuple[str, ...] = ('relu6', 'hswish')
SE_CHOICES: Tuple[bool, ...] = (False, True)
#: ops that random cells and mutations draw from (``none`` is expressed by leaving an edge out)
DEFAULT_OPS: Tuple[str, ...] = ('skip', 'dw3x3', 'dw5x5', 'dw7x7', 'dil_dw3x3', 'conv1x1', 'avg_pool3x3',
                                'max_pool3x3', 'sep_dw1x3_3x1')
#: node indices are single digits in the text form
MAX_NODES = 10

Edge = Tuple[int, int, str]

_GENES_RE = re.compile(r'^e(\d+(?:\.\d+)?)_([a-z0-9]+)(_se|_sei|_sev3)?$')
#: the SE token of each style, and back
_SE_TOKENS = {'exp': '_se', 'in': '_sei', 'v3': '_sev3'}
_SE_FROM_TOKEN = {t: style for style, t in _SE_TOKENS.items()}
_EDGE_RE = re.compile(r'^(\d)-(\d)=([a-z0-9_]+)$')


@dataclasses.dataclass(frozen=True)
class Cell:
    """An immutable cell genome. Build one with :meth:`parse`, :meth:`random` or the constructor.

    ``edges`` is a tuple of ``(src, dst, op)`` with ``src < dst``; the constructor sorts it and validates.
    """
    edges: Tuple[Edge, ...]
    expand: Union[int, float] = 6   # an integer ratio, or a decimal one (make_divisible widths)
    act: str = 'relu6'
    se: bool = False
    #: the SE style when ``se`` (:data:`~autospace_nni.cells.block.SE_STYLES`); always ``'exp'`` without SE
    se_style: str = 'exp'

    def __post_init__(self):
        # a decimal ratio that is a whole number is that integer ratio (one cell, one text)
        if isinstance(self.expand, float) and self.expand.is_integer():
            object.__setattr__(self, 'expand', int(self.expand))
        if self.se is False and self.se_style != 'exp':
            object.__setattr__(self, 'se_style', 'exp')
        edges = tuple(sorted((int(s), int(d), str(o)) for s, d, o in self.edges if o != 'none'))
        object.__setattr__(self, 'edges', edges)
        self._validate()
        # what the cost model looks up per edge (op, and whether the edge reads the block input, so takes the
        # stride); kept off the dataclass fields so equality, hashing and the text stay the genome's alone
        object.__setattr__(self, '_priced_edges', tuple((op, s == 0) for s, _, op in edges))

    # ----- structure -----
    @property
    def n_nodes(self) -> int:
        return max(d for _, d, _ in self.edges) + 1

    @property
    def output(self) -> int:
        return self.n_nodes - 1

    def incoming(self, node: int) -> list[Edge]:
        return [e for e in self.edges if e[1] == node]

    def _validate(self) -> None:
        if isinstance(self.expand, bool) or not isinstance(self.expand, (int, float)) or not self.expand >= 1:
            raise CellError(f'expand ratio {self.expand!r} must be a number >= 1 (an integer, or a decimal '
                            'such as 2.5)')
        if self.expand > MAX_EXPAND:
            raise CellError(f'expand ratio {self.expand} is over the limit of {MAX_EXPAND} (autospace_nni.limits)')
        if self.act not in ACTIVATIONS:
            raise CellError(f'unknown activation {self.act!r}; known: {", ".join(ACTIVATIONS)}')
        if not isinstance(self.se, bool):
            raise CellError(f'se gene must be a bool, got {self.se!r}')
        if self.se_style not in SE_STYLES:
            raise CellError(f'unknown SE style {self.se_style!r}; known: {", ".join(SE_STYLES)}')
        if not self.edges:
            raise CellError('a cell needs at least one non-none edge')
        seen = set()
        for s, d, op in self.edges:
            tag = f'{s}-{d}={op}'
            if op not in PRIMITIVES:
                raise CellError(f'unknown op {op!r} in edge {tag}; known: {", ".join(sorted(PRIMITIVES))}')
            if s < 0 or d < 0:
                raise CellError(f'negative node index in edge {tag}')
            if s >= d:
                raise CellError(f'edge {tag} must go from a lower to a higher node (cycles are not allowed)')
            if d >= MAX_NODES:
                raise CellError(f'edge {tag}: node indices must be below {MAX_NODES}')
            if (s, d) in seen:
                raise CellError(f'edge {s}-{d} appears twice; one op per edge')
            seen.add((s, d))
        n = self.n_nodes
        out = n - 1
        has_in = {d for _, d, _ in self.edges}
        has_out = {s for s, _, _ in self.edges}
        for node in range(1, n):
            if node not in has_in:
                raise CellError(f'node {node} is not reachable from node 0 (no incoming edge)')
        for node in range(0, out):
            if node not in has_out:
                raise CellError(f'node {node} does not reach the output node {out} (no outgoing edge)')
        # With src < dst, an incoming edge for every node >0 and an outgoing one for every node <out,
        # every node is reachable from 0 and reaches the output by induction.

    # ----- text -----
    @property
    def genes_text(self) -> str:
        return f'e{self.expand!r}_{self.act}' + (_SE_TOKENS[self.se_style] if self.se else '')

    def __str__(self) -> str:
        return self.genes_text + ':' + ','.join(f'{s}-{d}={op}' for s, d, op in self.edges)

    def __repr__(self) -> str:
        return f'Cell.parse({str(self)!r})'

    @classmethod
    def parse(cls, text: str) -> 'Cell':
        """Parse the text form. ``Cell.parse(str(c)) == c`` for every cell, and
        ``str(Cell.parse(s)) == s`` for every text that :meth:`__str__` produces."""
        if not isinstance(text, str):
            raise CellError(f'cell text must be a string, got {type(text).__name__}')
        if text.count(':') != 1:
            raise CellError(f'cell text {text!r} must look like "e6_relu6:0-1=dw3x3" (one ":" between genes '
                            'and edges)')
        genes, edges_text = text.split(':')
        m = _GENES_RE.match(genes)
        if not m:
            raise CellError(f'bad genes token {genes!r}: expected e<expand>_<act>[_se|_sei|_sev3], e.g. "e6_relu6"')
        expand_text, act, se = m.groups()
        expand = float(expand_text) if '.' in expand_text else int(expand_text)
        if isinstance(expand, float) and expand.is_integer():
            expand = int(expand)
        if expand_text != repr(expand):
            raise CellError(f'bad expand ratio {expand_text!r} in genes token {genes!r}: write it as {expand!r}')
        if expand < 1:
            raise CellError(f'expand ratio {expand} in {genes!r} must be at least 1')
        if act not in ACTIVATIONS:
            raise CellError(f'unknown activation {act!r} in genes token {genes!r}; known: {", ".join(ACTIVATIONS)}')
        edges = []
        for token in edges_text.split(','):
            em = _EDGE_RE.match(token)
            if not em:
                raise CellError(f'bad edge token {token!r}: expected <src>-<dst>=<op>, e.g. "0-1=dw3x3"')
            s, d, op = em.groups()
            if op not in PRIMITIVES:
                raise CellError(f'unknown op {op!r} in edge {token!r}; known: {", ".join(sorted(PRIMITIVES))}')
            edges.append((int(s), int(d), op))
        return cls(tuple(edges), expand, act, bool(se), _SE_FROM_TOKEN[se] if se else 'exp')

    # ----- identity -----
    @property
    def canonical(self) -> str:
        """The text of the lexicographically smallest relabelling of the intermediate nodes that keeps
        edges pointing forward. Equal for isomorphic cells."""
        n = self.n_nodes
        inner = list(range(1, n - 1))
        best = None
        for perm in itertools.permutations(inner):
            mapping = {0: 0, n - 1: n - 1, **dict(zip(inner, perm))}
            edges = [(mapping[s], mapping[d], op) for s, d, op in self.edges]
            if any(s >= d for s, d, _ in edges):
                continue
            text = ','.join(f'{s}-{d}={op}' for s, d, op in sorted(edges))
            if best is None or text < best:
                best = text
        return self.genes_text + ':' + best

    @property
    def key(self) -> str:
        """A short hash of :attr:`canonical`: the population's duplicate test."""
        return hashlib.sha1(self.canonical.encode()).hexdigest()[:12]

    # ----- sampling -----
    @classmethod
    def random(cls, rng, *, n_nodes: int = 4, ops: Sequence[str] = DEFAULT_OPS,
               expand_choices: Sequence[int] = EXPAND_CHOICES, act_choices: Sequence[str] = ACT_CHOICES,
               se_choices: Sequence[bool] = SE_CHOICES, edge_prob: float = 0.3) -> 'Cell':
        """A uniformly-built random valid cell. ``rng`` is a ``numpy.random.RandomState``."""
        if not 2 <= n_nodes <= MAX_NODES:
            raise ValueError(f'n_nodes must be in [2, {MAX_NODES}], got {n_nodes}')
        pairs = set()
        for d in range(1, n_nodes):  # every node gets an incoming edge ...
            pairs.add((int(rng.randint(0, d)), d))
        for s in range(0, n_nodes - 1):  # ... and every non-output node an outgoing one
            if not any(p[0] == s for p in pairs):
                pairs.add((s, int(rng.randint(s + 1, n_nodes))))
        for s in range(n_nodes):
            for d in range(s + 1, n_nodes):
                if (s, d) not in pairs and rng.rand() < edge_prob:
                    pairs.add((s, d))
        edges = tuple((s, d, ops[int(rng.randint(len(ops)))]) for s, d in sorted(pairs))
        return cls(edges, int(expand_choices[rng.randint(len(expand_choices))]),
                   act_choices[int(rng.randint(len(act_choices)))],
                   bool(se_choices[int(rng.randint(len(se_choices)))]))

    def mutate(self, rng, *, ops: Sequence[str] = DEFAULT_OPS, expand_choices: Sequence[int] = EXPAND_CHOICES,
               act_choices: Sequence[str] = ACT_CHOICES, se_choices: Sequence[bool] = SE_CHOICES) -> 'Cell':
        """One local mutation: change one edge's op, add or remove one edge, or flip one gene.
        The child is always valid and always differs from ``self`` (as a genome)."""
        for _ in range(1000):
            kind = ('op', 'add', 'remove', 'gene')[rng.randint(4)]
            child = self._mutate_once(kind, rng, ops, expand_choices, act_choices, se_choices)
            if child is not None and child != self:
                return child
        raise CellError(f'no valid local mutation of {self} within the given choices')

    def _mutate_once(self, kind, rng, ops, expand_choices, act_choices, se_choices):
        edges = list(self.edges)
        n = self.n_nodes
        if kind == 'op':
            i = rng.randint(len(edges))
            s, d, op = edges[i]
            others = [o for o in ops if o != op]
            if not others:
                return None
            edges[i] = (s, d, others[rng.randint(len(others))])
        elif kind == 'add':
            free = [(s, d) for s in range(n) for d in range(s + 1, n) if not any(e[:2] == (s, d) for e in edges)]
            if not free:
                return None
            s, d = free[rng.randint(len(free))]
            edges.append((s, d, ops[rng.randint(len(ops))]))
        elif kind == 'remove':
            if len(edges) < 2:
                return None
            edges.pop(rng.randint(len(edges)))
            try:
                child = Cell(tuple(edges), self.expand, self.act, self.se, self.se_style)
            except CellError:
                return None
            # a removal that shrinks the node count would silently relabel the output; not local
            return child if child.n_nodes == n else None
        else:
            gene = ('expand', 'act', 'se')[rng.randint(3)]
            current = getattr(self, gene)
            choices = {'expand': expand_choices, 'act': act_choices, 'se': se_choices}[gene]
            others = [c for c in choices if c != current]
            if not others:
                return None
            value = others[rng.randint(len(others))]
            return dataclasses.replace(self, **{gene: (bool(value) if gene == 'se' else value)})
        try:
            return Cell(tuple(edges), self.expand, self.act, self.se, self.se_style)
        except CellError:
            return None

    def with_genes(self, **genes) -> 'Cell':
        return dataclasses.replace(self, **genes)

    # ----- cost and module (implemented in sibling modules; exposed here for convenience) -----
    def cost(self, c_in: int, c_out: int, stride: int, height: int, width: int):
        """Analytic ``CellCost(madds, params, h_out, w_out)`` of this cell as an MBConv-style block."""
        return _cell_cost(self, c_in, c_out, stride, height, width)

    def build(self, c_in: int, c_out: int, stride: int):
        """The ``nn.Module`` of this cell as an MBConv-style block (expand → DAG → project, + shortcut)."""
        check_build(_cell_cost(self, c_in, c_out, stride, 8, 8).params, f'cell {self} on {c_in}->{c_out} channels')
        return CellBlock(self, c_in, c_out, stride)


def parse_cells(texts: Iterable[str]) -> list[Cell]:
    return [Cell.parse(t) for t in texts]

