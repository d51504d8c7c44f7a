"""Per-group cell populations: tournament selection with local mutation, aging replacement, and the
fitness moving average (docs/method.md, "Population and selection" and "Fitness").

Pure Python + numpy: nothing here touches torch, so it is unit-testable and cheap to checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

from ..cells.fixed import parse_candidate
from ..cells.genome import Cell, DEFAULT_OPS, EXPAND_CHOICES, ACT_CHOICES, SE_CHOICES
from ..fitness import eqn5_update

__all__ = ['Member', 'GroupPopulation', 'CellSampler']


@dataclasses.dataclass
class Member:
    cell: Cell
    fitness: float        # Eqn 5 over the cell's own scores; before its first score, a prior for tournaments
    birth: int            # creation order within the group; the oldest has the smallest birth
    evals: int = 0        # iterations in which this cell was sampled and scored (its own evidence)
    reference: bool = False
    parent: Optional[str] = None   # parent's key, for lineage in reports

    @property
    def key(self) -> str:
        return self.cell.key

    def to_dict(self) -> dict:
        return {'cell': str(self.cell), 'fitness': self.fitness, 'birth': self.birth, 'evals': self.evals,
                'reference': self.reference, 'parent': self.parent}

    @classmethod
    def from_dict(cls, d: dict) -> 'Member':
        return cls(parse_candidate(d['cell']), float(d['fitness']), int(d['birth']), int(d['evals']),
                   bool(d['reference']), d.get('parent'))


@dataclasses.dataclass(frozen=True)
class CellSampler:
    """What random cells and mutations may draw from."""
    n_nodes: int = 4
    ops: Sequence[str] = DEFAULT_OPS
    expand_choices: Sequence[int] = EXPAND_CHOICES
    act_choices: Sequence[str] = ACT_CHOICES
    se_choices: Sequence[bool] = SE_CHOICES
    edge_prob: float = 0.3

    def random(self, rng) -> Cell:
        return Cell.random(rng, n_nodes=self.n_nodes, ops=self.ops, expand_choices=self.expand_choices,
                           act_choices=self.act_choices, se_choices=self.se_choices, edge_prob=self.edge_prob)

    def mutate(self, cell: Cell, rng) -> Cell:
        return cell.mutate(rng, ops=self.ops, expand_choices=self.expand_choices, act_choices=self.act_choices,
                           se_choices=self.se_choices)


class GroupPopulation:
    """The population of one layer group.

    ``admissible(cell) -> bool`` is the budget filter; reference cells are admitted regardless.
    """

    def __init__(self, name: str, *, size: int, sampler: CellSampler, admissible: Callable[[Cell], bool],
                 replacement: str = 'oldest', initial_fitness: float = 1.0):
        if replacement not in ('oldest', 'worst'):
            raise ValueError(f"replacement must be 'oldest' or 'worst', got {replacement!r}")
        self.name = name
        self.size = size
        self.sampler = sampler
        self.admissible = admissible
        self.replacement = replacement
        self.initial_fitness = initial_fitness
        self.members: List[Member] = []
        self._births = 0

    # ----- membership -----
    def keys(self) -> set:
        return {m.key for m in self.members}

    def find(self, key: str) -> Optional[Member]:
        for m in self.members:
            if m.key == key:
                return m
        return None

    def _add(self, cell: Cell, fitness: float, *, reference=False, parent=None) -> Member:
        m = Member(cell, fitness, self._births, 0, reference, parent)
        self._births += 1
        self.members.append(m)
        return m

    def seed(self, rng, references: Sequence[Cell] = (), *, planted: Sequence[Cell] = (),
             max_tries: int = 200) -> None:
        """The initial population: the reference cells, the planted cells (if admissible), then random
        admissible cells up to ``size``."""
        for ref in references:
            if ref.key not in self.keys():
                self._add(ref, self.initial_fitness, reference=True)
        for cell in planted:
            if len(self.members) < self.size and cell.key not in self.keys() and self.admissible(cell):
                self._add(cell, self.initial_fitness)
        tries = 0
        while len(self.members) < self.size and tries < max_tries * self.size:
            tries += 1
            cell = self.sampler.random(rng)
            if cell.key in self.keys() or not self.admissible(cell):
                continue
            self._add(cell, self.initial_fitness)

    def admit(self, child: Cell, parent: Member, protect: frozenset = frozenset()) -> Optional[Member]:
        """Add a child (valid, admissible, not a duplicate by key), then trim to ``size``. Reference members
        and members whose key is in ``protect`` (this round's picks) are never the ones to leave."""
        if child.key in self.keys() or not self.admissible(child):
            return None
        # the parent's fitness is the child's prior in tournaments; it is no measurement (evals stays 0,
        # and the child's first score replaces it, see eqn5_update)
        m = self._add(child, parent.fitness, parent=parent.key)
        while len(self.members) > self.size:
            # reference members (the reference, and an adopted space's own candidates) never age out
            candidates = [x for x in self.members if x is not m and x.key not in protect and not x.reference]
            if not candidates:
                self.members.remove(m)
                return None
            if self.replacement == 'oldest':
                victim = min(candidates, key=lambda x: x.birth)
            else:
                victim = min(candidates, key=lambda x: (x.fitness, x.birth))
            self.members.remove(victim)
        return m

    # ----- selection -----
    def tournament(self, rng, sample_size: int, exclude: set) -> Optional[Member]:
        pool = [m for m in self.members if m.key not in exclude]
        if not pool:
            return None
        idx = rng.choice(len(pool), size=min(sample_size, len(pool)), replace=False)
        contestants = [pool[i] for i in idx]
        # ties go to the first drawn, which is random
        return max(contestants, key=lambda m: m.fitness)

    def select(self, rng, k: int, *, sample_size: int, p_mutation: float, exclude: set = frozenset(),
               parent_only: set = frozenset(), mutate_tries: int = 20) -> List[Member]:
        """K distinct members by tournament; each winner is, with probability ``p_mutation``, replaced by
        an admitted local mutation of itself. Keys in ``exclude`` are never picked. Members in
        ``parent_only`` (the reference, which is a branch anyway) compete in tournaments, and a win always
        gives a mutant of them; with ``p_mutation == 0`` they do not compete."""
        chosen: List[Member] = []
        taken = set(exclude)
        parent_only = set(parent_only)
        for _ in range(k):
            # parents whose mutants could not be admitted this round; with mutation off, parent-only members
            barred: set = set(parent_only) if p_mutation <= 0 else set()
            while True:
                winner = self.tournament(rng, sample_size, (taken - parent_only) | barred)
                if winner is None:
                    break
                must = winner.key in parent_only
                # a fixed candidate (a user's module the grammar cannot express) competes but never mutates
                if isinstance(winner.cell, Cell) and (must or rng.rand() < p_mutation):
                    child = self._admitted_mutant(winner, rng, taken | parent_only, mutate_tries)
                    if child is not None:
                        winner = child
                        break
                if not must:
                    break
                barred.add(winner.key)
            if winner is None:
                break
            chosen.append(winner)
            taken.add(winner.key)
        return chosen

    def _admitted_mutant(self, parent: Member, rng, taken: set, tries: int) -> Optional[Member]:
        for _ in range(tries):
            child = self.sampler.mutate(parent.cell, rng)
            if child.key in taken:
                continue
            admitted = self.admit(child, parent, protect=frozenset(taken | {parent.key}))
            if admitted is not None:
                return admitted
        return None

    # ----- fitness -----
    def update_fitness(self, scores: Dict[str, float], beta: float) -> None:
        """Eqn 5 (:func:`~autospace_nni.fitness.eqn5_update`) for each scored key; others keep
        their fitness."""
        for m in self.members:
            if m.key in scores:
                m.fitness = eqn5_update(m.fitness, float(scores[m.key]), beta, m.evals)
                m.evals += 1

    def ranked(self, *, min_evals: int = 1) -> List[Member]:
        """Members by fitness, best first ("global sorted α"). Cells with fewer than ``min_evals`` scores
        of their own rank after the others, so a cell cannot enter the learned space on a prior or on
        one lucky score."""
        return sorted(self.members, key=lambda m: (m.evals >= min_evals, m.fitness, -m.birth), reverse=True)

    def top(self, m: int, *, include_reference: bool = True, min_evals: int = 1) -> List[Member]:
        ranked = [x for x in self.ranked(min_evals=min_evals) if include_reference or not x.reference]
        return ranked[:m]

    def diversity(self) -> int:
        return len(self.keys())

    # ----- state -----
    def state_dict(self) -> dict:
        return {'members': [m.to_dict() for m in self.members], 'births': self._births}

    def load_state_dict(self, state: dict) -> None:
        self.members = [Member.from_dict(d) for d in state['members']]
        self._births = int(state['births'])
