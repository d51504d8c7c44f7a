"""Learned spaces: the output of AutoSpace, a versioned JSON document, and the NNI model space it loads as.

Document (format version 1)::

    {"format": "autospace-nni/learned-space", "format_version": 1,
     "skeleton": {...Skeleton.to_dict()...}  (or "model_space": {...AdoptedLayout.to_dict()...}),
     "groups": {"s1_first": {"cells": [{"cell": "e6_relu6:0-1=dw3x3", "fitness": 1.13, "reference": false}, ...],
                             "blocks": ["s1_b0"]}, ...},
     "references": {"s1_first": "e6_relu6:0-1=dw3x3", ...} | null,
     "budget_madds": 1.2e7 | null, "seed": 0,
     "provenance": {"package_version": ..., "dataset": ..., "iterations": ..., "wall_time_s": ..., "options": {...}}}
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional

from nni.common.serializer import SerializableObject
from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from ..cells.fixed import Candidate, FixedCandidate, parse_candidate
from ..cells.genome import Cell
from ..errors import CellError, LearnedSpaceError
from ..limits import check_build
from .adopted_export import learned_choices, replace_choices
from .layout import LAYOUT_KEYS, Layout, layout_from_document
from .network import Architecture, NetworkCost, SkeletonNet, build_choice, choice_cost, price
from .skeleton import BlockSpec, Skeleton, ZERO

__all__ = ['LearnedSpace', 'LearnedModelSpace', 'FORMAT', 'FORMAT_VERSION', 'LearnedCell', 'manual_space',
           'MANUAL_CANDIDATES', 'rebuild_adopted']

#: the hand-designed ProxylessNAS space: MBConv {k3, k5, k7} x {e3, e6} (+ zero in non-first blocks)
MANUAL_CANDIDATES = [(k, e) for e in (3, 6) for k in (3, 5, 7)]

FORMAT = 'autospace-nni/learned-space'
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class LearnedCell:
    cell: Candidate
    fitness: float
    reference: bool = False
    #: in a space learned on a user's model space: the user's own name for this candidate
    name: Optional[str] = None

    @property
    def choice_name(self) -> str:
        """Its name in the NNI ``LayerChoice`` and in samples: the user's name, else the cell text."""
        return self.name if self.name is not None else str(self.cell)


def _non_finite(value, path: str = '') -> Optional[str]:
    """The path of the first NaN or infinity in a JSON document, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or '/'
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f'{path}/{k}')
        if found is not None:
            return found
    return None


@dataclasses.dataclass
class LearnedSpace:
    #: the network around the blocks (:class:`~autospace_nni.space.layout.Layout`): a :class:`Skeleton`, or
    #: the layout of a user's model space the space was learned on
    layout: Layout
    groups: Dict[str, List[LearnedCell]]
    references: Optional[Dict[str, Cell]] = None
    budget_madds: Optional[float] = None
    seed: Optional[int] = None
    provenance: dict = dataclasses.field(default_factory=dict)
    #: the user's model space an adopted space was learned on, so ``model_space()`` needs no argument in the
    #: process that evolved it; never saved (a document cannot hold a module) nor compared
    base: Optional[object] = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        known = self.layout.groups()
        missing = [g for g in known if g not in self.groups]
        extra = [g for g in self.groups if g not in known]
        if missing or extra:
            raise LearnedSpaceError(f'learned space does not fit {self.layout.kind} {self.layout.name!r}: missing groups '
                                    f'{missing or "none"}, unknown groups {extra or "none"}')
        for g, cells in self.groups.items():
            if not cells:
                raise LearnedSpaceError(f'group {g} has no cells')
            keys = [c.cell.key for c in cells]
            if len(set(keys)) != len(keys):
                raise LearnedSpaceError(f'group {g} lists the same cell twice')
            names = [c.choice_name for c in cells]
            if len(set(names)) != len(names):
                raise LearnedSpaceError(f'group {g} lists the same candidate name twice')
            # a fixed candidate (a user's own module) needs its measured cost on every block of its group;
            # a skeleton has none, so fixed candidates exist only in spaces learned on a model space
            fixed = [c.cell.name for c in cells if isinstance(c.cell, FixedCandidate)]
            priced = {n for b in known[g] for n, _, _ in b.fixed}
            unpriced = [n for n in fixed if n not in priced]
            if unpriced:
                raise LearnedSpaceError(f'group {g}: fixed candidates {unpriced} have no measured cost in the document '
                                        '(fixed candidates exist only in spaces learned on a model space)')

    @property
    def skeleton(self) -> Skeleton:
        """The layout when it is a :class:`Skeleton`; a space learned on a user's model space has none."""
        if not isinstance(self.layout, Skeleton):
            raise LearnedSpaceError(f'this space was learned on the model space {self.layout.class_path}, not on a '
                                    'skeleton: use .layout, and model_space(base).freeze(sample) for a network')
        return self.layout

    # ----- candidates -----
    def candidates(self, spec: BlockSpec) -> List[str]:
        """Candidate names of one block: its group's cells (best first), plus ``zero`` where allowed."""
        names = [c.choice_name for c in self.groups[spec.group]]
        return names + ([ZERO] if spec.zero_allowed else [])

    def candidate(self, spec: BlockSpec, name: str):
        """The cell (or fixed candidate, or ``zero``) that ``name`` stands for in block ``spec``."""
        if name == ZERO and spec.zero_allowed:
            return ZERO
        for c in self.groups[spec.group]:
            if c.choice_name == name:
                return c.cell
        raise LearnedSpaceError(f'{name!r} is not a candidate of block {spec.label}')

    def block_specs(self) -> List[BlockSpec]:
        return self.layout.blocks()

    def model_space(self, base=None):
        """An NNI model space of this space. For a space learned on a user's model space, that space
        (``base``, or the one it was learned on in this process) with each evolved ``LayerChoice``'s
        candidates replaced by the learned ones, labels unchanged."""
        return _MODEL_SPACES[self.layout.kind](self, base)

    def to_nni_search_space(self) -> dict:
        """The HPO ``search_space.json`` form: ``{label: {"_type": "choice", "_value": [...]}}``."""
        return {spec.label: {'_type': 'choice', '_value': self.candidates(spec)} for spec in self.block_specs()}

    def architecture(self, sample: Dict[str, str]) -> Architecture:
        skeleton = self.skeleton
        for spec in self.block_specs():
            if spec.label in sample and sample[spec.label] not in self.candidates(spec):
                raise LearnedSpaceError(f'{sample[spec.label]!r} is not a candidate of block {spec.label}')
        return Architecture(skeleton, dict(sample))

    def cost(self, sample: Dict[str, str]) -> NetworkCost:
        """Analytic MAdds and params of any architecture in this space."""
        missing = [spec.label for spec in self.block_specs() if spec.label not in sample]
        if missing:
            raise LearnedSpaceError(f'the sample has no choice for blocks {missing}')
        self.layout.check_sample(sample)
        return price(self.layout, {spec.label: self.candidate(spec, str(sample[spec.label]))
                                   for spec in self.block_specs()})

    def best_sample(self) -> Dict[str, str]:
        """Each block takes its group's fittest cell."""
        return {spec.label: self.groups[spec.group][0].choice_name for spec in self.block_specs()}

    def table(self) -> List[dict]:
        rows = []
        for g, cells in self.groups.items():
            spec = self.layout.groups()[g][0]
            for c in cells:
                cost = choice_cost(c.cell, spec)
                rows.append({'group': g, 'cell': str(c.cell) if c.name is None else f'{c.name} = {c.cell}', 'fitness': c.fitness, 'madds': cost.madds,
                             'params': cost.params, 'reference': c.reference})
        return rows

    def format_table(self) -> str:
        rows = self.table()
        w = max(len(r['cell']) for r in rows)
        out = [f'{"group":10s} {"cell":{w}s} {"fitness":>8s} {"MAdds":>10s} {"params":>8s}']
        for r in rows:
            out.append(f'{r["group"]:10s} {r["cell"]:{w}s} {r["fitness"]:8.3f} {r["madds"]:10d} {r["params"]:8d}'
                       + ('  (reference)' if r['reference'] else ''))
        return '\n'.join(out)

    # ----- (de)serialisation -----
    def to_dict(self) -> dict:
        sk_groups = self.layout.groups()
        return {
            'format': FORMAT,
            'format_version': FORMAT_VERSION,
            LAYOUT_KEYS[self.layout.kind]: self.layout.to_dict(),
            'groups': {g: {'blocks': [b.label for b in sk_groups[g]],
                           'cells': [{'cell': str(c.cell), 'fitness': c.fitness, 'reference': c.reference,
                                      **({} if c.name is None else {'name': c.name})}
                                     for c in cells]}
                       for g, cells in self.groups.items()},
            'references': None if self.references is None else {g: str(c) for g, c in self.references.items()},
            'budget_madds': self.budget_madds,
            'seed': self.seed,
            'provenance': self.provenance,
        }

    @classmethod
    def from_dict(cls, d, *, skeleton: Optional[Skeleton] = None) -> 'LearnedSpace':
        if not isinstance(d, dict):
            raise LearnedSpaceError('a learned space must be a JSON object')
        bad = _non_finite(d)
        if bad is not None:    # Python's json reads NaN and Infinity, which JSON itself has not
            raise LearnedSpaceError(f'learned space holds a non-finite number at {bad}; JSON numbers are finite')
        if d.get('format') != FORMAT:
            raise LearnedSpaceError(f'not a learned space (format is {d.get("format")!r}, expected {FORMAT!r})')
        version = d.get('format_version')
        if version != FORMAT_VERSION:
            raise LearnedSpaceError(f'learned space format version {version!r} is not supported (this is version '
                                    f'{FORMAT_VERSION}); re-export it with a matching autospace-nni')
        sk = layout_from_document(d)
        if skeleton is not None and not isinstance(sk, Skeleton):
            raise LearnedSpaceError('this space was learned on a user model space, not on a skeleton')
        if skeleton is not None and skeleton != sk:
            raise LearnedSpaceError(f'learned space was made for skeleton {sk.name!r}, which differs from the given '
                                    f'skeleton {skeleton.name!r}; evolve a space for that skeleton')
        try:
            groups = {g: [LearnedCell(parse_candidate(_text(c['cell'])), _number(c['fitness'], 'fitness'),
                                      _flag(c.get('reference', False)),
                                      None if c.get('name') is None else _text(c['name']))
                          for c in spec['cells']]
                      for g, spec in d['groups'].items()}
            refs = d.get('references')
            refs = None if refs is None else {g: parse_candidate(_text(t)) for g, t in refs.items()}
            budget = d.get('budget_madds')
            budget = None if budget is None else _number(budget, 'budget_madds')
            if budget is not None and budget <= 0:
                raise ValueError(f'budget_madds must be positive or null, got {budget}')
            seed = d.get('seed')
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise TypeError(f'seed must be an integer or null, got {seed!r}')
            prov = d.get('provenance') or {}
            if not isinstance(prov, dict):
                raise TypeError('provenance must be an object')
        except CellError as e:
            raise LearnedSpaceError(f'learned space holds an invalid cell: {e}') from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise LearnedSpaceError(f'learned space is malformed: {type(e).__name__}: {e}') from None
        return cls(sk, groups, refs, budget, seed, prov)

    def save(self, path) -> None:
        """Atomic write: a temporary file, then rename, so an existing file is never left half-written."""
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write('\n')
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, *, skeleton: Optional[Skeleton] = None) -> 'LearnedSpace':
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise LearnedSpaceError(f'learned space file {path} does not exist') from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LearnedSpaceError(f'learned space file {path} is not valid JSON: {e}') from None
        return cls.from_dict(d, skeleton=skeleton)


def _text(v) -> str:
    if not isinstance(v, str):
        raise TypeError(f'a cell must be text, got {v!r}')
    return v


def _number(v, what: str) -> float:
    import math
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TypeError(f'{what} must be a finite number, got {v!r}')
    return float(v)


def _flag(v) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f'reference must be true or false, got {v!r}')
    return v


class LearnedModelSpace(ModelSpace):
    """A learned space as an NNI model space: one ``LayerChoice`` per block, labelled ``s{stage}_b{block}``,
    keyed by cell text (plus ``zero``). Its only init argument is the JSON document, so it serialises for
    multi-trial NNI experiments."""

    def __init__(self, document: dict):
        super().__init__()
        from nni.nas.space import current_model
        learned = LearnedSpace.from_dict(document)
        self.learned = learned
        # when NNI rebuilds a chosen architecture (model_context), remember which one it is, so a trial can
        # put the architecture inside its metric (NNI 3.0 mispairs trials and parameters, #5726)
        active = current_model()
        labels = set(learned.skeleton.labels)
        self.autospace_sample = None if active is None else {k: v for k, v in active.items() if k in labels}
        # every candidate of every block is built: bound them together before any is
        check_build(sum(choice_cost(learned.candidate(spec, n), spec).params for spec in learned.block_specs()
                        for n in learned.candidates(spec)) + learned.layout.outside_cost().params,
                    f'the model space of skeleton {learned.layout.name!r}')
        self.net = SkeletonNet(learned.skeleton, lambda spec: LayerChoice(
            {name: build_choice(ZERO if name == ZERO else Cell.parse(name), spec)
             for name in learned.candidates(spec)}, label=spec.label))

    def forward(self, x):
        return self.net(x)


# ----- a learned space as an NNI model space, by layout kind -----
def _skeleton_model_space(learned: LearnedSpace, base) -> ModelSpace:
    if base is not None:
        raise LearnedSpaceError('base= is only for spaces learned on a user\'s model space')
    # Only what the space needs travels as the init argument (it is serialised into every NNI trial's
    # parameters). Provenance stays out: NNI's json_tricks strips '#...' as a comment, so a value like
    # the penalty mode 'mul#log' would truncate the message and crash NNI's dispatcher.
    doc = learned.to_dict()
    doc['provenance'] = {k: v for k, v in learned.provenance.items() if k == 'kind'}
    return LearnedModelSpace(doc)


def _adopted_model_space(learned: LearnedSpace, base) -> ModelSpace:
    """``base`` (the user's space) with each evolved ``LayerChoice``'s candidates replaced by the learned
    ones (:func:`~autospace_nni.space.adopted_export.replace_choices`). The result re-creates itself from its
    init arguments like any NNI model space (what multi-trial experiments do in their trials) through
    :func:`rebuild_adopted`."""
    base = base if base is not None else learned.base
    if base is None:
        raise LearnedSpaceError(f'this space was learned on {learned.layout.class_path}: pass that space, '
                                'built with the same arguments, as model_space(base=...)')
    space = replace_choices(learned, base)
    document = learned.to_dict()
    # provenance stays out: NNI's json_tricks reads '#...' as a comment (see _skeleton_model_space)
    document['provenance'] = {}
    recipe = [type(base), list(base.trace_args), dict(base.trace_kwargs), document]
    space.trace_copy = lambda: SerializableObject(rebuild_adopted, list(recipe), {})
    return space


_MODEL_SPACES = {'skeleton': _skeleton_model_space, 'model-space': _adopted_model_space}


def rebuild_adopted(base_class, base_args, base_kwargs, document):
    """Build the learned version of ``base_class(*base_args, **base_kwargs)``. Under an NNI model context
    (a trial building its architecture) the user's ``__init__`` runs with each evolved ``LayerChoice``
    resolved to the chosen learned candidate."""
    from nni.nas.space import current_model, model_context
    learned = LearnedSpace.from_dict(document)
    sample = current_model()
    if sample is None:
        return _adopted_model_space(learned, base_class(*base_args, **base_kwargs))
    layout = learned.layout
    chosen, users = {}, {}
    for spec in layout.blocks():
        name = sample[spec.label]
        raw = layout.raw_names.get(spec.label, [])
        user = next((r for r in raw if str(r) == str(name)), None)
        cand = learned.candidate(spec, str(name))
        # a user's candidate is built by their own code (under its own name: 0, not '0'); a learned cell
        # replaces the choice
        if user is not None:
            users[spec.label] = user
        chosen[spec.label] = None if user is not None else cand.build(spec.c_in, spec.c_out, spec.stride)
    with model_context(users), learned_choices(chosen):
        return base_class(*base_args, **base_kwargs)


def manual_space(skeleton) -> LearnedSpace:
    """The hand-made baseline (ProxylessNAS's space) as a :class:`LearnedSpace` document: every group gets the
    six MBConv cells (in the skeleton's activation), so it uses the same labels, builder and cost model as
    learned spaces; ``manual_space(skeleton).model_space()`` is its NNI model space. ``skeleton`` is a
    :class:`Skeleton` or a preset name."""
    if isinstance(skeleton, str):
        skeleton = Skeleton.preset(skeleton)
    cells = [LearnedCell(Cell(((0, 1, f'dw{k}x{k}'),), e, skeleton.act, False), 0.0, False)
             for k, e in MANUAL_CANDIDATES]
    return LearnedSpace(skeleton, {g: list(cells) for g in skeleton.groups()}, None, None, None,
                        {'kind': 'manual', 'candidates': 'MBConv {k3,k5,k7} x {e3,e6} + zero'})

