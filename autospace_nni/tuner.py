"""A budget-aware NNI tuner: wraps any NNI tuner and never proposes an architecture over a MAdds budget.

Use it from an experiment YAML by class name::

    tuner:
      className: autospace_nni.tuner.BudgetTuner
      classArgs: {space: learned_space.json, budget_madds: 3.0e5, tuner: TPE, tuner_args: {seed: 0}}

or register it once the NNI way (``nnictl algo register --meta experiment_configs/budget_tuner_meta.yml``)
and write ``tuner: {name: AutoSpaceBudgetTuner, classArgs: {...}}``.

Every proposal of the inner tuner is priced analytically (:meth:`LearnedSpace.cost`, microseconds). One over
the budget is never sent to a trial: the inner tuner is told it scored the worst possible value (so a
model-based tuner such as TPE learns to avoid that region) and asked again. Concurrency > 1 is fine: the
outer parameter ids map one to one onto inner ones.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any, Dict, Optional

import nni
from nni.tuner import Tuner
from nni.utils import ClassArgsValidator

__all__ = ['BudgetTuner', 'BudgetTunerClassArgsValidator', 'INNER_TUNERS']

_logger = logging.getLogger(__name__)

#: NNI's builtin tuners by the names nnictl uses; any "module.Class" also works
INNER_TUNERS = {
    'TPE': 'nni.algorithms.hpo.tpe_tuner.TpeTuner',
    'Random': 'nni.algorithms.hpo.random_tuner.RandomTuner',
    'Evolution': 'nni.algorithms.hpo.evolution_tuner.EvolutionTuner',
}


def _inner_class(name: str):
    path = INNER_TUNERS.get(name, name)
    module, _, cls = path.rpartition('.')
    if not module:
        raise ValueError(f'unknown tuner {name!r}; use one of {", ".join(INNER_TUNERS)} or "module.Class"')
    return getattr(importlib.import_module(module), cls)


class BudgetTuner(Tuner):
    """Wrap the NNI tuner ``tuner`` (with ``tuner_args``) so that every architecture it proposes costs at most
    ``budget_madds`` on ``space`` (a learned_space.json path, or ``'manual'`` with ``skeleton``).
    A relative ``space`` is looked up in the experiment's ``codeDirectory``; with a registered tuner (no
    code directory) give an absolute path."""

    def __init__(self, space: str, budget_madds: float, tuner: str = 'TPE', tuner_args: Optional[dict] = None,
                 skeleton: Optional[str] = None, max_tries: int = 2000, optimize_mode: str = 'maximize'):
        from .search import load_search_space
        if budget_madds is None or float(budget_madds) <= 0:
            raise ValueError(f'budget_madds must be positive, got {budget_madds!r}')
        if optimize_mode not in ('maximize', 'minimize'):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if space != 'manual' and not os.path.isabs(space) and not os.path.exists(space):
            # NNI's dispatcher runs in the experiment's log folder and appends the YAML's codeDirectory to
            # sys.path: look there (newest entry first)
            for folder in reversed(sys.path):
                if folder and os.path.isfile(os.path.join(folder, space)):
                    space = os.path.join(folder, space)
                    break
        self.space = load_search_space(space, skeleton)
        self.budget_madds = float(budget_madds)
        self.max_tries = int(max_tries)
        self.worst = -1e9 if optimize_mode == 'maximize' else 1e9   # finite: some tuners average results
        args = dict(tuner_args or {})
        args.setdefault('optimize_mode', optimize_mode)
        self.inner = _inner_class(tuner)(**args)
        self.rejected = 0
        self.proposed: Dict[int, Dict[str, Any]] = {}
        cheapest = self.space.cost({s.label: self._cheapest(s) for s in self.space.block_specs()}).madds
        if cheapest > self.budget_madds:
            raise ValueError(f'budget {self.budget_madds:.4g} MAdds is below the cheapest architecture of the space '
                             f'({cheapest} MAdds); raise budget_madds')

    def _cheapest(self, spec):
        from .space.network import choice_cost
        from .cells import Cell
        from .space.skeleton import ZERO
        return min(self.space.candidates(spec),
                   key=lambda c: choice_cost(c if c == ZERO else Cell.parse(c), spec).madds)

    def update_search_space(self, search_space):
        labels = {s.label for s in self.space.block_specs()}
        unknown = [k for k in search_space if k not in labels]
        if unknown:
            raise ValueError(f'search space keys {unknown} are not blocks of the space; produce it with '
                             f'`autospace-nni export-nni-space`')
        self.inner.update_search_space(search_space)

    def _madds(self, params: dict) -> float:
        sample = self.space.best_sample()
        sample.update(params)
        return self.space.cost(sample).madds

    def generate_parameters(self, parameter_id, **kwargs):
        for _ in range(self.max_tries):
            params = self.inner.generate_parameters(parameter_id, **kwargs)
            if self._madds(params) <= self.budget_madds:
                self.proposed[parameter_id] = params
                return params
            # over budget: never run it; teach the inner tuner it is the worst possible result
            self.rejected += 1
            self.inner.receive_trial_result(parameter_id, params, self.worst)
            if hasattr(self.inner, 'trial_end'):
                self.inner.trial_end(parameter_id, True)
        raise nni.NoMoreTrialError(f'{self.max_tries} proposals in a row were over the budget of '
                                   f'{self.budget_madds:.4g} MAdds')

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.inner.receive_trial_result(parameter_id, parameters, value, **kwargs)

    def trial_end(self, parameter_id, success, **kwargs):
        if hasattr(self.inner, 'trial_end'):
            self.inner.trial_end(parameter_id, success, **kwargs)

    def import_data(self, data):
        self.inner.import_data(data)


class BudgetTunerClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        from schema import Optional as Opt, Schema
        Schema({'space': str, 'budget_madds': lambda v: float(v) > 0, Opt('tuner'): str, Opt('tuner_args'): dict,
                Opt('skeleton'): str, Opt('max_tries'): int,
                Opt('optimize_mode'): self.choices('optimize_mode', 'maximize', 'minimize')}).validate(kwargs)
