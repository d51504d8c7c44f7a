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

Three NNI 3.0 faults are worked around here:

* NNI's dispatcher builds the tuner before it connects, and the manager gives up on a tuner that has not
  connected in 10 s ("Tuner did not connect in 10 seconds"). Loading the space needs torch (~7-10 s on a cold
  disk), so the space loads on first use (:meth:`update_search_space`, NNI's first command once connected);
  a budget below the space's cheapest architecture is refused there (see the last point).
* At ``trialConcurrency > 1`` NNI pairs trials with the wrong parameters (microsoft/nni #5726), so
  ``trial_end`` may name a parameter id whose trial is still running; passed on, NNI's own TPE then fails
  with ``KeyError`` on that id's result, the dispatcher dies and the experiment hangs in RUNNING
  (microsoft/nni #5689). Results carry the right id, so an end is passed on only once its id's result has
  come; an end with no result is passed on when every proposed trial has ended (then it is a real failure).
* An exception in a tuner method stops NNI's dispatcher worker but never reaches the manager, so the
  experiment would stay RUNNING for ever. The tuner reports it with the dispatcher's own ``report_error``:
  the experiment ends in ERROR, and the message is in ``nnimanager.log`` and ``dispatcher.log``.
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import os
import sys
from typing import Any, Dict, Optional, Set

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


def _reported(method):
    """Run a tuner method; an exception (other than NNI's "no more trials") is first sent to the NNI manager
    by the dispatcher that holds this tuner, if any, then raised (module docstring, last point)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except nni.NoMoreTrialError:
            raise
        except Exception as e:
            from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
            for obj in gc.get_objects():
                if isinstance(obj, MsgDispatcherBase) and getattr(obj, 'tuner', None) is self:
                    obj.report_error(f'{type(self).__name__}.{method.__name__}: {type(e).__name__}: {e}')
            raise
    return run


class BudgetTuner(Tuner):
    """Wrap the NNI tuner ``tuner`` (with ``tuner_args``) so that every architecture it proposes costs at most
    ``budget_madds`` on ``space`` (a learned_space.json path, or ``'manual'`` with ``skeleton``).
    A relative ``space`` is looked up in the experiment's ``codeDirectory``; with a registered tuner (no
    code directory) give an absolute path."""

    def __init__(self, space: str, budget_madds: float, tuner: str = 'TPE', tuner_args: Optional[dict] = None,
                 skeleton: Optional[str] = None, max_tries: int = 2000, optimize_mode: str = 'maximize'):
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
        if space == 'manual' and skeleton is None:
            raise ValueError("space 'manual' needs skeleton (e.g. tiny-8, mobile-28)")
        if space != 'manual' and not os.path.isfile(space):
            raise ValueError(f'space {space!r} is not a file; give a learned_space.json path (relative to the '
                             "experiment's codeDirectory, or absolute) or 'manual' with skeleton")
        self._space_args = (space, skeleton)
        self._space = None
        self.budget_madds = float(budget_madds)
        self.max_tries = int(max_tries)
        self.worst = -1e9 if optimize_mode == 'maximize' else 1e9   # finite: some tuners average results
        args = dict(tuner_args or {})
        args.setdefault('optimize_mode', optimize_mode)
        self.inner = _inner_class(tuner)(**args)
        self.rejected = 0
        self.proposed: Dict[int, Dict[str, Any]] = {}
        self._results: Set[int] = set()        # parameter ids whose result has come
        self._ended: Set[int] = set()          # parameter ids NNI said had ended
        self._held_ends: Dict[int, bool] = {}  # ends not yet passed on: their id's result has not come

    @property
    def space(self):
        """The search space, loaded on first use (see the module's docstring); a budget below its cheapest
        architecture raises ``ValueError`` here."""
        if self._space is None:
            from .search import load_search_space
            space = load_search_space(*self._space_args)
            cheapest = space.cost({s.label: self._cheapest(space, s) for s in space.block_specs()}).madds
            if cheapest > self.budget_madds:
                raise ValueError(f'budget {self.budget_madds:.4g} MAdds is below the cheapest architecture of the '
                                 f'space ({cheapest} MAdds); raise budget_madds')
            self._space = space
        return self._space

    @staticmethod
    def _cheapest(space, spec):
        from .space.network import choice_cost
        from .cells import Cell
        from .space.skeleton import ZERO
        return min(space.candidates(spec),
                   key=lambda c: choice_cost(c if c == ZERO else Cell.parse(c), spec).madds)

    @_reported
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

    @_reported
    def generate_parameters(self, parameter_id, **kwargs):
        for _ in range(self.max_tries):
            params = self.inner.generate_parameters(parameter_id, **kwargs)
            if self._madds(params) <= self.budget_madds:
                self.proposed[parameter_id] = params
                return params
            # over budget: never run it; teach the inner tuner it is the worst possible result
            self.rejected += 1
            self.inner.receive_trial_result(parameter_id, params, self.worst)
            self._end(parameter_id, True)
        raise nni.NoMoreTrialError(f'{self.max_tries} proposals in a row were over the budget of '
                                   f'{self.budget_madds:.4g} MAdds')

    @_reported
    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        if parameter_id in self._results:
            _logger.warning('a second result for parameter %s ignored', parameter_id)
            return
        self._results.add(parameter_id)
        self.inner.receive_trial_result(parameter_id, parameters, value, **kwargs)
        if parameter_id in self._held_ends:
            self._end(parameter_id, self._held_ends.pop(parameter_id))

    @_reported
    def trial_end(self, parameter_id, success, **kwargs):
        # NNI may name the wrong id here at concurrency > 1 (module docstring): hold an end until its result
        self._ended.add(parameter_id)
        if parameter_id in self._results:
            self._end(parameter_id, success, **kwargs)
        else:
            self._held_ends[parameter_id] = success
        if self._held_ends and self.proposed.keys() <= self._ended:
            # every proposed trial has ended, so the ids still without a result are the trials that failed
            for pid in sorted(self._held_ends):
                self._end(pid, self._held_ends.pop(pid))

    def _end(self, parameter_id, success, **kwargs):
        if hasattr(self.inner, 'trial_end'):
            self.inner.trial_end(parameter_id, success, **kwargs)

    @_reported
    def import_data(self, data):
        self.inner.import_data(data)


class BudgetTunerClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        from schema import Optional as Opt, Schema
        Schema({'space': str, 'budget_madds': lambda v: float(v) > 0, Opt('tuner'): str, Opt('tuner_args'): dict,
                Opt('skeleton'): str, Opt('max_tries'): int,
                Opt('optimize_mode'): self.choices('optimize_mode', 'maximize', 'minimize')}).validate(kwargs)
