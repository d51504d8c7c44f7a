"""AutoSpace's evolution as an ask/tell loop: no torch, no Lightning, no NNI.

:class:`EvolutionLoop` owns the per-group populations (:mod:`.evolution`), the hard filter (each group's
``admissible`` test), which cells each iteration samples, the fitness update (Eqn 5, through
:meth:`GroupPopulation.update_fitness`), the convergence test, the final re-scoring iterations, and a
``state_dict`` of plain Python types::

    loop = EvolutionLoop(population_size=16, sample_k=3, seed=0, iterations=8)
    loop.add_group('s1', references=[ref], admissible=lambda cell: True)
    while not loop.finished:
        cells = loop.ask()                       # {group: [Cell, ...]}: this iteration's picks
        record = loop.tell(measure(cells))       # {group: {cell key: r}}; None in warm-up

The strategy (:mod:`.autospace`) is the glue that turns ``ask`` into supernet branches and measurements
into ``tell``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..cells.genome import Cell
from .evolution import CellSampler, GroupPopulation, Member

__all__ = ['EvolutionLoop']


class EvolutionLoop:
    """Populations of cells, one per layer group, evolved by tournament selection with local mutation.

    The arguments are :class:`~autospace_nni.strategy.autospace.AutoSpace`'s options of the same names
    (documented there); ``final_iterations`` is already resolved to a number.
    """

    def __init__(self, *, population_size: int = 64, sample_k: int = 4, tournament_size: int = 8,
                 p_mutation: float = 0.5, replacement: str = 'oldest', beta: float = 0.7,
                 initial_fitness: float = 1.0, sampler: CellSampler = CellSampler(), top_m: int = 6,
                 min_evals: int = 2, final_iterations: int = 2, patience: int = 3,
                 iterations: Optional[int] = None, warmup_iterations: int = 2, seed: Optional[int] = None):
        self.population_size, self.sample_k, self.tournament_size = population_size, sample_k, tournament_size
        self.p_mutation, self.replacement, self.beta = p_mutation, replacement, beta
        self.initial_fitness, self.sampler = initial_fitness, sampler
        self.top_m, self.min_evals, self.final_iterations = top_m, min_evals, final_iterations
        self.patience, self.iterations, self.warmup_iterations = patience, iterations, warmup_iterations
        self.rng = np.random.RandomState(seed)
        self.populations: Dict[str, GroupPopulation] = {}
        self.references: Dict[str, Cell] = {}       # group -> its reference cell (absent: the no-reference ablation)
        self.iteration = 0
        self.finished = False
        self.history: List[dict] = []
        self.sampled: Dict[str, List[str]] = {}     # group -> keys of this iteration's picks
        self._stable_iterations = 0
        self._last_top: Optional[Dict[str, tuple]] = None
        self._finalists: Optional[Dict[str, List[str]]] = None   # set when the final iterations begin
        self._finals_start = 0

    # ----- groups -----
    def _population(self, group: str, admissible: Callable[[Cell], bool]) -> GroupPopulation:
        return GroupPopulation(group, size=self.population_size, sampler=self.sampler, admissible=admissible,
                               replacement=self.replacement, initial_fitness=self.initial_fitness)

    def add_group(self, group: str, *, references: Sequence = (), planted: Sequence = (),
                  admissible: Callable[[Cell], bool] = lambda cell: True) -> GroupPopulation:
        """Seed ``group``'s population: ``references`` (the first is the group's reference cell, the
        others are kept like it; none: the no-reference ablation), ``planted`` cells, then random admissible
        cells up to the population size."""
        pop = self._population(group, admissible)
        pop.seed(self.rng, list(references), planted=list(planted))
        if references:
            self.references[group] = references[0]
        self.populations[group] = pop
        return pop

    def _ref_key(self, group: str) -> Optional[str]:
        ref = self.references.get(group)
        return None if ref is None else ref.key

    # ----- phase -----
    @property
    def in_warmup(self) -> bool:
        return self.iteration < self.warmup_iterations

    @property
    def in_finals(self) -> bool:
        return self._finalists is not None

    def finals_planned(self) -> int:
        """The final iterations, capped so that they fit after the warm-up within T."""
        if self.iterations is None:
            return self.final_iterations
        return min(self.final_iterations, max(0, self.iterations - self.warmup_iterations))

    def _begin_finals(self) -> None:
        """Fix each group's finalists: its best cells by their own scores (the reference aside)."""
        n = self.finals_planned() * self.sample_k
        self._finals_start = self.iteration
        self._finalists = {g: [m.key for m in pop.ranked(min_evals=1) if m.key != self._ref_key(g)][:n]
                           for g, pop in self.populations.items()}

    # ----- ask -----
    def sample(self) -> None:
        """Pick this iteration's K cells per group: the finalists in rank order during the final
        iterations, else tournaments with mutation (the reference is a parent, never a pick)."""
        for g, pop in self.populations.items():
            if self._finalists is not None:
                done = self.iteration - self._finals_start
                self.sampled[g] = self._finalists[g][done * self.sample_k:(done + 1) * self.sample_k]
                if self.sampled[g]:
                    continue
            ref = set() if self._ref_key(g) is None else {self._ref_key(g)}
            chosen = pop.select(self.rng, self.sample_k, sample_size=self.tournament_size,
                                p_mutation=self.p_mutation, exclude=ref, parent_only=ref)
            self.sampled[g] = [m.key for m in chosen]

    def ask(self) -> Dict[str, List[Cell]]:
        """This iteration's picks per group (drawn on the first call of an iteration)."""
        if not self.sampled:
            self.sample()
        return {g: [pop.find(k).cell for k in self.sampled[g] if pop.find(k) is not None]
                for g, pop in self.populations.items()}

    # ----- tell -----
    def tell(self, scores: Optional[Dict[str, Dict[str, float]]], **metrics: Any) -> dict:
        """End the iteration: Eqn 5 on ``scores`` (``{group: {cell key: r}}``; ignored in warm-up), the
        convergence test, the switch to the final iterations, and the next picks. ``metrics`` (e.g.
        ``val_acc``) go into the returned record, which is also appended to :attr:`history`."""
        trained = not self.in_warmup and scores is not None
        record: Dict[str, Any] = {'iteration': self.iteration}
        for k in ('val_acc', 'val_loss'):
            record[k] = metrics.pop(k, float('nan'))
        record.update({'warmup': not trained, 'steps': metrics.pop('steps', None), 'final': self.in_finals})
        record.update(metrics)
        if trained:
            for g in self.populations:
                group_scores = dict(scores.get(g, {}))
                if self._ref_key(g) is not None:
                    group_scores[self._ref_key(g)] = 1.0
                self.populations[g].update_fitness(group_scores, self.beta)
                record[f'scores/{g}'] = group_scores
        top_now = {}
        for g, pop in self.populations.items():
            fits = [m.fitness for m in pop.members]
            record[f'fitness_mean/{g}'] = float(np.mean(fits))
            record[f'fitness_max/{g}'] = float(np.max(fits))
            record[f'diversity/{g}'] = pop.diversity()
            top_now[g] = tuple(m.key for m in pop.top(self.top_m, min_evals=self.min_evals))
            prev = self._last_top[g] if self._last_top else ()
            record[f'churn/{g}'] = len(set(top_now[g]) - set(prev)) if prev else self.top_m
        if trained:
            if self._last_top is not None and all(set(top_now[g]) == set(self._last_top[g]) for g in top_now):
                self._stable_iterations += 1
            else:
                self._stable_iterations = 0
        self._last_top = top_now
        record['stable_iterations'] = self._stable_iterations
        record['sampled'] = {g: [str(self.populations[g].find(k).cell) for k in keys if self.populations[g].find(k)]
                             for g, keys in self.sampled.items()}
        record['fitness'] = {g: {str(m.cell): m.fitness for m in pop.members if m.evals > 0}
                             for g, pop in self.populations.items()}
        self.history.append(record)
        self.iteration += 1
        converged = trained and self.patience > 0 and self._stable_iterations >= self.patience
        finals = self.finals_planned()
        if self._finalists is not None:
            self.finished = self.iteration - self._finals_start >= finals
        else:
            main_end = None if self.iterations is None else self.iterations - finals
            main_done = converged or (main_end is not None and self.iteration >= main_end)
            if main_done and finals > 0:
                self._begin_finals()
            self.finished = bool(main_done and self._finalists is None)
        record['converged'] = bool(converged)
        if not self.finished:
            self.sample()
        return record

    # ----- results -----
    def learned(self, group: str) -> List[Member]:
        """``group``'s top-M members by fitness, the reference aside (cells short of ``min_evals`` rank last)."""
        ref = self._ref_key(group)
        top = self.populations[group].top(self.top_m + 1, include_reference=True, min_evals=self.min_evals)
        return [m for m in top if m.key != ref][:self.top_m]

    # ----- resume -----
    def state_dict(self) -> dict:
        """Everything that decides the rest of the run, as plain Python types (JSON- and weights_only-safe)."""
        name, keys, pos, has_gauss, cached = self.rng.get_state()
        return {
            'iteration': self.iteration, 'finished': self.finished,
            'rng': [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
            'populations': {g: p.state_dict() for g, p in self.populations.items()},
            'sampled': copy.deepcopy(self.sampled),
            'stable_iterations': self._stable_iterations,
            'last_top': copy.deepcopy(self._last_top),
            'finalists': copy.deepcopy(self._finalists),
            'finals_start': self._finals_start,
            'history': copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state['iteration'])
        self.finished = bool(state['finished'])
        name, keys, pos, has_gauss, cached = state['rng']
        self.rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        for g, ps in state['populations'].items():
            if g not in self.populations:
                self.populations[g] = self._population(g, lambda c: True)
            self.populations[g].load_state_dict(ps)
        self.sampled = copy.deepcopy(state['sampled'])
        self._stable_iterations = int(state['stable_iterations'])
        self._last_top = copy.deepcopy(state['last_top'])
        self._finalists = copy.deepcopy(state.get('finalists'))
        self._finals_start = int(state.get('finals_start', 0))
        self.history = copy.deepcopy(state['history'])
