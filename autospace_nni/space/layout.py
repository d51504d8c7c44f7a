"""The layout of a space: what the strategy, the cost model and a learned space need to know about the
network around the evolving blocks, whatever it came from.

Two kinds implement :class:`Layout`:

* :class:`~autospace_nni.space.skeleton.Skeleton` (``kind='skeleton'``): the package's own network frame;
* :class:`AdoptedLayout` (``kind='model-space'``): a user's NNI model space, adopted
  (:mod:`autospace_nni.space.adopted`): one block per evolved ``LayerChoice``, the rest of the network
  measured once by hooks.

Everything downstream (populations, the hard filter, the cost profiler, a learned space's document, pricing,
its NNI model space) works through this interface, so no code asks which kind it holds; only a learned
space's export to an NNI model space is chosen by ``kind`` (:data:`LAYOUT_KEYS`, and
:meth:`~autospace_nni.space.learned.LearnedSpace.model_space`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Protocol, Tuple, runtime_checkable

from ..cells.cost import NetworkCost
from ..cells.fixed import Candidate, parse_candidate
from ..cells.genome import Cell
from ..errors import LearnedSpaceError, SkeletonError, CellError
from .skeleton import BlockSpec, Skeleton

__all__ = ['Layout', 'AdoptedLayout', 'LeftAlone', 'LAYOUT_KEYS', 'layout_from_document', 'plain']


@runtime_checkable
class Layout(Protocol):
    """The network around the evolving blocks."""
    name: str
    #: ``'skeleton'`` or ``'model-space'``: how a learned space's document stores it (:data:`LAYOUT_KEYS`)
    kind: str
    #: the activation of the cells the layout starts from
    act: str

    def blocks(self) -> List[BlockSpec]:
        """The searchable blocks, in network order."""

    def groups(self) -> Dict[str, List[BlockSpec]]:
        """Layer group → its blocks (a group shares one population)."""

    @property
    def labels(self) -> List[str]:
        """The blocks' labels (the NNI choice labels)."""

    def outside_cost(self) -> NetworkCost:
        """MAdds and params of everything that is not a searchable block."""

    def candidates_of(self, group: str) -> List[Candidate]:
        """The user's own candidates of a group (they seed its population); none for a skeleton."""

    def user_name(self, group: str, cand: Candidate) -> Optional[str]:
        """The user's name of a candidate (its name in their ``LayerChoice``), else ``None``."""

    def check_sample(self, sample) -> None:
        """Raise :class:`~autospace_nni.errors.LearnedSpaceError` if ``sample`` cannot be priced analytically."""

    def to_dict(self) -> dict:
        """The JSON form a learned space's document stores under ``LAYOUT_KEYS[kind]``."""


#: layout kind → the key of a learned space's document that holds it
LAYOUT_KEYS = {'skeleton': 'skeleton', 'model-space': 'model_space'}


def layout_from_document(d: dict) -> Layout:
    """The layout a learned space's document holds (under ``skeleton`` or ``model_space``)."""
    if 'model_space' in d:
        return AdoptedLayout.from_dict(d['model_space'] if isinstance(d['model_space'], dict) else {})
    try:
        return Skeleton.from_dict(d['skeleton'])
    except (SkeletonError, CellError, KeyError, TypeError, ValueError) as e:
        raise LearnedSpaceError(f'learned space has a malformed skeleton: {e}') from None


@dataclasses.dataclass(frozen=True)
class LeftAlone:
    """A mutable that the adoption did not evolve, and why."""
    label: str
    kind: str
    path: str
    reason: str


def plain(value):
    """JSON-able copy of a sample's values (NNI gives ranges and numpy scalars too)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, 'item') else list(v)))


@dataclasses.dataclass
class AdoptedLayout:
    """The adopted space's blocks (one layer group per evolved ``LayerChoice`` label), the cost of the
    rest of the network (as pinned for the evolution), the module path of each choice and the user's
    candidates (name → cell text or ``fixed:<name>``)."""
    name: str
    class_path: str
    input_shape: Tuple[int, ...]
    specs: List[BlockSpec]
    outside: NetworkCost
    paths: Dict[str, str]
    user_candidates: Dict[str, Dict[str, str]]
    left_alone: List[LeftAlone]
    act: str = 'relu6'
    #: each choice's candidate names as the user's code gives them (ints for a list of candidates)
    raw_names: Dict[str, list] = dataclasses.field(default_factory=dict)
    #: the values the choices left alone had during the evolution, at which ``outside`` was measured
    pinned: dict = dataclasses.field(default_factory=dict)

    kind = 'model-space'

    def blocks(self) -> List[BlockSpec]:
        return list(self.specs)

    def outside_cost(self) -> NetworkCost:
        """The rest of the network as the evolution ran it (the choices left alone at their pinned values)."""
        return self.outside

    def check_sample(self, sample) -> None:
        """The rest of the network was measured with the choices left alone at the values they had in the
        evolution; a sample that sets them otherwise needs a count of the built network."""
        other = {k: v for k, v in plain({k: sample[k] for k in self.pinned if k in sample}).items()
                 if v != self.pinned[k]}
        if other:
            raise LearnedSpaceError(
                f'the rest of the network was priced with {", ".join(f"{k}={self.pinned[k]!r}" for k in other)} '
                f'(as in the evolution), not {", ".join(f"{k}={v!r}" for k, v in other.items())}; count '
                'the built network instead: count_by_hooks(space.freeze(sample), input_shape)')

    def groups(self) -> Dict[str, List[BlockSpec]]:
        return {b.group: [b] for b in self.specs}

    @property
    def labels(self) -> List[str]:
        return [b.label for b in self.specs]

    def candidates_of(self, group: str) -> List[Candidate]:
        return [parse_candidate(t) for t in self.user_candidates[group].values()]

    def user_name(self, group: str, cand: Candidate) -> Optional[str]:
        for name, text in self.user_candidates[group].items():
            if parse_candidate(text).key == cand.key:
                return name
        return None

    def to_dict(self) -> dict:
        return {'kind': 'model-space', 'name': self.name, 'class': self.class_path,
                'input_shape': list(self.input_shape), 'outside_cost': list(self.outside),
                'blocks': [{'label': b.label, 'path': self.paths[b.label], 'c_in': b.c_in, 'c_out': b.c_out,
                            'stride': b.stride, 'height': b.height, 'width': b.width,
                            'fixed': [list(f) for f in b.fixed],
                            'candidates': self.user_candidates[b.group],
                            'raw_names': list(self.raw_names.get(b.label, []))} for b in self.specs],
                'left_alone': [dataclasses.asdict(x) for x in self.left_alone], 'pinned': dict(self.pinned)}

    @classmethod
    def from_dict(cls, d: dict) -> 'AdoptedLayout':
        try:
            if d.get('kind') != 'model-space':
                raise ValueError(f'unknown space kind {d.get("kind")!r}')
            specs, paths, user, raw = [], {}, {}, {}
            for i, b in enumerate(d['blocks']):
                ints = [b[k] for k in ('c_in', 'c_out', 'stride', 'height', 'width')]
                if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in ints):
                    raise ValueError(f'block {b.get("label")!r}: shapes must be positive integers')
                fixed = tuple((str(n), int(m), int(p)) for n, m, p in b['fixed'])
                specs.append(BlockSpec(str(b['label']), 0, i, *ints, str(b['label']), False, fixed))
                paths[b['label']] = str(b['path'])
                cands = dict(b['candidates'])
                for t in cands.values():
                    parse_candidate(t)
                user[b['label']] = cands
                raw[b['label']] = [n for n in b.get('raw_names', []) if isinstance(n, (str, int))]
            left = [LeftAlone(**x) for x in d.get('left_alone', [])]
            return cls(str(d['name']), str(d['class']), tuple(int(v) for v in d['input_shape']), specs,
                       NetworkCost(*(int(v) for v in d['outside_cost'])), paths, user, left, raw_names=raw,
                       pinned=dict(d.get('pinned', {})))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise LearnedSpaceError(f'learned space has a malformed model-space description: {e}') from None

    def format_table(self) -> str:
        """What was evolved and what was left alone, one row per choice."""
        rows = [('label', 'path', 'status', 'details')]
        for b in self.specs:
            cands = [parse_candidate(t) for t in self.user_candidates[b.group].values()]
            n_cells = sum(isinstance(c, Cell) for c in cands)
            rows.append((b.label, self.paths[b.label], 'evolved',
                         f'{b.c_in}->{b.c_out} ch, stride {b.stride}, {b.height}x{b.width}; '
                         f'{n_cells} expressible candidates (reference cells), {len(cands) - n_cells} fixed'))
        for x in self.left_alone:
            rows.append((x.label, x.path, f'left alone ({x.kind})', x.reason))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return '\n'.join(f'{r[0]:{widths[0]}s}  {r[1]:{widths[1]}s}  {r[2]:{widths[2]}s}  {r[3]}' for r in rows)
