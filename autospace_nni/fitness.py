"""Fitness estimators: how one iteration measures the sampled cells, and Eqn 5, which turns those
measurements into a cell's fitness. Everything a newcomer needs to compare estimators is in this file.

An estimator produces, at the end of every (non-warm-up) iteration, a score ``r`` per sampled cell of
each layer group, on the scale "1.0 = as good as the reference cell" (or, without a reference, "1.0 =
as good as the average sampled cell"):

``alpha-sum``
    Eqn 3 read literally: the K sampled cells and the reference run side by side, mixed by softmax(α);
    α is trained on held-out batches (Eqn 4) and ``r = p_c / p_ref`` (:func:`alpha_scores`). Cheap to
    explain, but α of a weighted sum also rewards parameter-free cells next to the reference (DARTS'
    collapse onto skips).
``alpha-gates``
    The same α, trained with ProxylessNAS binary gates: one path, drawn from softmax(α), carries each
    forward pass, and α gets the binary-gate gradient. Weights train one sampled path at a time too.
``paired-eval``
    No α: the weights train with one path per step, drawn uniformly (single-path one-shot training). At
    the end of the iteration every sampled cell is evaluated on the *same* held-out images, in the
    network whose other blocks use the reference cell, against that reference network itself:
    ``r = exp(L_ref - L_c)`` (:func:`paired_scores`). Pairing on the same images cancels the variance
    that every cell of an (iteration, group) shares.

:data:`DEFAULT_FITNESS` is the estimator whose rank correlation with stand-alone training was best in
``benchmarks/fitness_quality.py`` (docs/benchmarks.md, "Fitness quality").

Pure Python: this module only does arithmetic. The measuring happens in
``autospace_nni/strategy/autospace.py``: ``AutoSpaceLightningModule.training_step`` (what each estimator
trains), ``_alpha_scores`` and ``_paired_scores`` (what it measures at the end of an iteration).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Sequence

__all__ = ['FitnessEstimator', 'FITNESS_ESTIMATORS', 'DEFAULT_FITNESS', 'estimator', 'alpha_scores',
           'paired_scores', 'eqn5_update']


@dataclasses.dataclass(frozen=True)
class FitnessEstimator:
    """How an estimator trains the supernet and where its scores come from."""
    name: str
    #: ``'sum'`` or ``'sample'`` (binary gates) for the α step; ``None``: α is never trained
    arch_path_mode: Optional[str]
    #: ``'sum'``, or ``'sample'``: one path per weight step (drawn from softmax(α), uniform when α is off)
    weight_path_mode: str
    #: ``'alpha'`` (scores from α, :func:`alpha_scores`) or ``'paired'`` (:func:`paired_scores`)
    scores_from: str
    summary: str

    @property
    def trains_alpha(self) -> bool:
        return self.arch_path_mode is not None


FITNESS_ESTIMATORS: Dict[str, FitnessEstimator] = {e.name: e for e in (
    FitnessEstimator('alpha-sum', 'sum', 'sum', 'alpha', "Eqn 3-5: weighted sum of the paths, r = p_c / p_ref"),
    FitnessEstimator('alpha-gates', 'sample', 'sample', 'alpha',
                     'ProxylessNAS binary gates for α and weights, r = p_c / p_ref'),
    FitnessEstimator('paired-eval', None, 'sample', 'paired',
                     'uniform single-path training, paired held-out loss vs the reference, r = exp(L_ref - L_c)'),
)}

#: chosen by measurement: the best Kendall τ against stand-alone training in benchmarks/fitness_quality.py
DEFAULT_FITNESS = 'paired-eval'


def estimator(name: str) -> FitnessEstimator:
    try:
        return FITNESS_ESTIMATORS[name]
    except KeyError:
        raise ValueError(f'fitness must be one of {", ".join(FITNESS_ESTIMATORS)}, got {name!r}') from None


def alpha_scores(probs: Sequence[float], keys: Sequence[str], has_reference: bool) -> Dict[str, float]:
    """r from the mixing probabilities of one block. ``probs``/``keys`` list the branches in order, the
    reference last when ``has_reference``: r = p_c / p_ref, else r = K · p_c (1 = the average branch)."""
    if has_reference:
        ref = probs[-1]
        return {k: float(p / ref) for k, p in zip(keys[:-1], probs[:-1])}
    n = len(probs)
    return {k: float(n * p) for k, p in zip(keys, probs)}


def paired_scores(losses: Dict[str, float], baseline: Optional[float] = None) -> Dict[str, float]:
    """r = exp(L_base - L_c) for held-out losses measured on the same images. ``baseline`` is the
    reference network's loss; ``None`` compares with the mean loss of the cells (no reference)."""
    if not losses:
        return {}
    base = float(sum(losses.values()) / len(losses)) if baseline is None else float(baseline)
    return {k: float(math.exp(max(-50.0, min(50.0, base - float(v))))) for k, v in losses.items()}


def eqn5_update(fitness: float, score: float, beta: float, evals: int) -> float:
    """Eqn 5, f <- β f + (1 - β) r, on a cell's *own* measurements: its first score replaces whatever it
    held before (an initial or inherited value is a prior for tournaments, never evidence)."""
    if evals == 0:
        return float(score)
    return float(beta * fitness + (1.0 - beta) * score)
