"""The MAdds budget, fed by the analytic cell cost through NNI's own profiler/penalty interfaces.

* :class:`AnalyticCostProfiler` is an ``nni.nas.profiler.Profiler``: ``profile(sample)`` prices an
  architecture (label → cell text or ``zero``) in microseconds, without building it, so NNI's filters
  (``RangeProfilerFilter``, ``Filter`` middleware) can use it directly.
* :class:`BudgetPenalty` is an NNI ``ExpectationProfilerPenalty`` (so NNI's DARTS, GumbelDARTS and
  Proxyless accept it as ``penalty=``) on the *expected* MAdds under the mixing probabilities,
  differentiable in α. Its default form is ProxylessNAS' ``mul#log`` with a hinge,
  ``CE · max(1, log E[F] / log F_target)^β`` (:func:`budget_factor`): a network already under the budget
  earns nothing by getting cheaper. ``'add'`` and ``'mul'`` use NNI's built-in aggregations, hinged too
  (NNI's ``nonlinear='positive'``).

NNI 3.0's differentiable layers export their probabilities with ``.tolist()``, so a penalty computed from
``export_probs()`` is a constant that gives α no gradient. :meth:`BudgetPenalty.bind` points the
penalty at the α parameters themselves (``DARTS._arch_parameters``) to keep it differentiable.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty
from nni.nas.profiler import Profiler

from .cells.fixed import parse_candidate
from .config import PENALTY_MODES
from .space.network import Architecture, choice_cost
from .space.skeleton import ZERO

__all__ = ['AnalyticCostProfiler', 'BudgetPenalty', 'PENALTY_MODES', 'budget_factor']



def budget_factor(expected: torch.Tensor, target: float, beta: float) -> torch.Tensor:
    """The hinged ``mul#log`` factor ``max(1, log E[F] / log F_target) ** beta``: 1, with no gradient,
    while the expected cost is within the budget."""
    log_target = math.log(target)
    return (torch.clamp(torch.log(expected), min=log_target) / log_target) ** beta


class AnalyticCostProfiler(Profiler):
    """MAdds (or params, ``metric='params'``) of a sample on ``layout`` (a skeleton or an adopted model space), priced analytically."""

    def __init__(self, layout, metric: str = 'madds'):
        if metric not in ('madds', 'params'):
            raise ValueError(f"metric must be 'madds' or 'params', got {metric!r}")
        self.layout = layout
        self.metric = metric
        self.specs = {b.label: b for b in layout.blocks()}
        self.fixed = getattr(layout.outside_cost(), metric)
        self._cache: Dict[tuple, int] = {}

    def block_cost(self, label: str, choice: str) -> int:
        key = (label, choice)
        if key not in self._cache:
            c = ZERO if choice == ZERO else parse_candidate(choice)
            self._cache[key] = getattr(choice_cost(c, self.specs[label]), self.metric)
        return self._cache[key]

    def profile(self, sample) -> float:
        return float(self.fixed + sum(self.block_cost(l, str(sample[l])) for l in self.specs))

    def expectation(self, probs: Dict[str, Dict[str, torch.Tensor]]):
        """E[cost] with ``probs`` = ``{label: {choice: prob}}`` (export_probs form); labels absent count as 0."""
        total = self.fixed
        for label, dist in probs.items():
            if label not in self.specs:
                continue
            for choice, p in dist.items():
                total = total + p * self.block_cost(label, choice)
        return total

    def architecture(self, sample) -> Architecture:
        return Architecture(self.layout, dict(sample))


class BudgetPenalty(ExpectationProfilerPenalty):
    """``forward(loss, probs) -> (loss', details)`` with the expected cost under ``probs`` (or under
    softmax of the bound α)."""

    def __init__(self, profiler: AnalyticCostProfiler, target: float, *, mode: str = 'mul#log', beta: float = 0.3,
                 scale: float = 1.0):
        if mode not in PENALTY_MODES:
            raise ValueError(f'budget penalty mode must be one of {PENALTY_MODES}, got {mode!r}')
        if target <= 1:
            raise ValueError(f'budget target must be > 1 MAdds, got {target}')
        agg = 'mul' if mode == 'mul' else 'add'
        super().__init__(profiler, target, scale, nonlinear='positive', aggregate=agg)
        self.mode = mode
        self.beta = beta
        self._alphas: Optional[Dict[str, torch.Tensor]] = None
        self._values: Optional[Dict[str, list]] = None

    def bind(self, alphas: Dict[str, torch.Tensor], values: Dict[str, list]) -> 'BudgetPenalty':
        """Price ``softmax(alphas[label])`` over ``values[label]`` instead of the exported sample."""
        self._alphas = dict(alphas)
        self._values = {k: list(v) for k, v in values.items()}
        return self

    def profile(self, sample) -> torch.Tensor:
        if self._alphas is not None:
            sample = {label: dict(zip(self._values[label], torch.softmax(alpha, -1)))
                      for label, alpha in self._alphas.items()}
        return self.profiler.expectation(sample)

    def forward(self, loss: torch.Tensor, sample) -> tuple:
        if self.mode != 'mul#log':
            return super().forward(loss, sample)
        expected = self.profile(sample)
        if not torch.is_tensor(expected):
            expected = torch.tensor(float(expected))
        factor = budget_factor(expected, self.baseline, self.beta)
        new = loss * factor
        return new, {'loss_original': loss.detach(), 'expected_madds': expected.detach(),
                     'factor': factor.detach(), 'loss_final': new.detach()}
