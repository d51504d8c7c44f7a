"""NAS on a learned or manual space with NNI's own strategies, under a MAdds budget fed by the analytic
cost (``autospace-nni search``).

=============  ===========================================  ===========================================
strategy       NNI class                                    budget mechanism
=============  ===========================================  ===========================================
darts          ``DARTS``                                    :class:`BudgetPenalty` (hinged ``mul#log``), bound to α
gumbel         ``GumbelDARTS``                              same
proxyless      ``Proxyless``                                same
spos           ``RandomOneShot`` then ``RegularizedEvolution``  ``filter=`` on sampled paths, then a ``Filter``
               on the trained supernet (inherited weights)  middleware on the evolution
evolution      ``RegularizedEvolution`` (training service)  ``Filter`` middleware, invalid → metric 0
random         ``Random`` (training service)                ``Filter`` middleware
=============  ===========================================  ===========================================

With a budget B every search fills it: the exported network lands in ``[budget_floor * B, B]`` (B capped
at the space's priciest network). One-shot exports move toward that window from either side
(:func:`constrained_export`); multi-trial strategies see a ``Filter`` with that lower bound.

Multi-trial runs go through NNI's training-service engine (a real NNI manager on a local port). Every
trial reports a dict metric whose ``arch`` is the architecture it trained, and results are read from
those metrics, never from NNI's trial/parameter pairing (wrong at ``trialConcurrency > 1``, #5726).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from . import interrupts
from .budget import AnalyticCostProfiler, BudgetPenalty
from .data import DataSplits, load_dataset
from .errors import AutoSpaceError
from .nni_patches import patient_manager_start
from .space.learned import LearnedSpace, manual_space
from .space.skeleton import Skeleton
from .training import sgd_cosine

__all__ = ['STRATEGIES', 'load_search_space', 'run_search', 'trial_train', 'evaluate_accuracy']

STRATEGIES = ('darts', 'gumbel', 'proxyless', 'spos', 'evolution', 'random')
_logger = logging.getLogger(__name__)


def load_search_space(space: str, skeleton: Optional[str] = None) -> LearnedSpace:
    """``'manual'`` (needs ``skeleton``) or a learned_space.json path (checked against ``skeleton``)."""
    if space == 'manual':
        if skeleton is None:
            raise AutoSpaceError('--space manual needs --skeleton (e.g. tiny-8, mobile-28)')
        return manual_space(Skeleton.preset(skeleton))
    sk = Skeleton.preset(skeleton) if skeleton else None
    learned = LearnedSpace.load(space)
    if not isinstance(learned.layout, Skeleton):
        raise AutoSpaceError(f'{space} was learned on a user model space ({learned.layout.class_path}); the command '
                             'line works on skeletons. In Python: LearnedSpace.load(path).model_space(base=YourSpace(...))')
    if sk is not None and learned.skeleton.name != sk.name:
        raise AutoSpaceError(f'{space} was learned for skeleton {learned.skeleton.name!r}, not {skeleton!r}')
    return learned


@torch.no_grad()
def predict(model: nn.Module, dataset, batch_size: int = 256, device='cpu') -> torch.Tensor:
    """The model's predicted class (on the CPU) for every image of ``dataset`` (a TensorDataset), in order."""
    model.eval()
    x = dataset.tensors[0]
    return torch.cat([model(x[i:i + batch_size].to(device)).argmax(-1).cpu() for i in range(0, len(x), batch_size)]
                     or [torch.empty(0, dtype=torch.long)])


def evaluate_accuracy(model: nn.Module, dataset, batch_size: int = 256, device='cpu') -> float:
    y = dataset.tensors[1]
    return int((predict(model, dataset, batch_size, device) == y).sum()) / max(1, len(y))


def _train(model: nn.Module, data: DataSplits, *, epochs: int, batch_size: int, lr: float, seed: int,
           label_smoothing: float = 0.0, device='cpu', on_epoch=None) -> None:
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    opt, sched = sgd_cosine(model.parameters(), lr=lr, epochs=epochs, weight_decay=4e-5)
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    x, y = data.train.tensors
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                continue
            loss = crit(model(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if on_epoch is not None:
            on_epoch(epoch, model)


def trial_train(model: nn.Module, dataset: str = 'digits', data_dir: Optional[str] = None, epochs: int = 2,
                batch_size: int = 64, lr: float = 0.05, seed: int = 0, limit: Optional[int] = None) -> None:
    """A multi-trial NAS trial: train the chosen architecture, report val accuracy per epoch and, at the
    end, a dict with the architecture, its MAdds and params (so results never rely on NNI's pairing)."""
    import nni
    torch.manual_seed(seed)
    data = load_dataset(dataset, data_dir, seed=seed, limit=limit)
    sample = getattr(model, 'autospace_sample', None)
    learned = getattr(model, 'learned', None)
    acc = {'v': 0.0}

    def on_epoch(epoch, m):
        acc['v'] = evaluate_accuracy(m, data.val)
        nni.report_intermediate_result({'default': acc['v'], 'epoch': epoch})

    _train(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, on_epoch=on_epoch)
    result = {'default': acc['v'], 'arch': json.dumps(sample, sort_keys=True)}
    if learned is not None and sample:
        cost = learned.cost(sample)
        result.update(madds=cost.madds, params=cost.params)
    nni.report_final_result(result)


def _inherited_eval(model: nn.Module, data: DataSplits = None, profiler: AnalyticCostProfiler = None,
                    budget: Optional[float] = None) -> None:
    """SPOS stage 2: score an architecture with the weights it inherits from the trained supernet."""
    import nni
    # batch statistics (train-mode BN, no gradient): the supernet's running statistics mix every path
    x, y = data.val.tensors
    model.train()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 256]).argmax(-1) == y[i:i + 256]).sum()) for i in range(0, len(x), 256))
    nni.report_final_result(correct / max(1, len(x)))


class _BindPenalty:
    """Mixin for NNI's DARTS family: after the supernet exists, point the budget penalty at α."""

    def mutate_model(self, model):
        values = {label: list(m.values) for label, m in model.simplify().items()}
        model = super().mutate_model(model)
        if isinstance(getattr(self, 'penalty', None), BudgetPenalty):
            self.penalty.bind(self._arch_parameters, values)
        return model


def _oneshot_class(name):
    from nni.nas.oneshot.pytorch.strategy import DARTS, GumbelDARTS, Proxyless
    base = {'darts': DARTS, 'gumbel': GumbelDARTS, 'proxyless': Proxyless}[name]
    return type(f'Budgeted{base.__name__}', (_BindPenalty, base), {})


@interrupts.watched
def run_search(learned: LearnedSpace, strategy: str, data: DataSplits, *, budget_madds: Optional[float] = None,
               epochs: int = 4, batch_size: int = 64, lr: float = 0.05, seed: int = 0, trials: int = 8,
               concurrency: int = 1, port: int = 8745, out_dir=None, dataset_name: str = 'digits',
               data_dir: Optional[str] = None, trial_epochs: int = 1, limit: Optional[int] = None,
               device: str = 'cpu', progress: bool = False, budget_floor: Optional[float] = 0.9) -> Dict:
    """Search ``learned`` with ``strategy``; returns the ``arch.json`` record. ``progress`` shows Lightning's
    bar for supernet epochs and a bar of finished trials for multi-trial strategies. Ctrl-C or SIGTERM raises
    ``KeyboardInterrupt`` (:mod:`~autospace_nni.interrupts`) where NNI's ``run()`` would return a half-done
    search as if it had finished."""
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot
    from nni.nas.strategy import RegularizedEvolution, Random
    from nni.nas.strategy.middleware import Chain, Filter
    from .training import make_evaluator

    if strategy not in STRATEGIES:
        raise AutoSpaceError(f'unknown strategy {strategy!r}; choose one of {", ".join(STRATEGIES)}')
    torch.manual_seed(seed)
    skeleton = learned.skeleton
    profiler = AnalyticCostProfiler(skeleton)
    if budget_madds is not None:
        cheapest, priciest = cost_range(learned)
        if cheapest > budget_madds:
            raise AutoSpaceError(f'budget {budget_madds:.4g} MAdds is below the cheapest network in this space '
                                 f'({cheapest:.4g} MAdds); raise --budget-madds')
    if budget_floor is not None and not 0 < budget_floor <= 1:
        raise AutoSpaceError(f'budget_floor must be in (0, 1], got {budget_floor}')
    lo = None
    if budget_madds is not None and budget_floor is not None:
        # a space whose priciest network is under the budget cannot fill it: its window is below that one
        lo = budget_floor * min(budget_madds, priciest)
    within = (lambda sample: True) if budget_madds is None else (
        lambda sample: (lo or 0) <= profiler.profile(sample) <= budget_madds)
    out_dir = Path(out_dir) if out_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)   # only once the arguments are known to be good
    workdir = str((out_dir or Path('.')) / 'nni-experiments')
    space = learned.model_space()
    t0 = time.time()
    metric = None
    if strategy in ('darts', 'gumbel', 'proxyless'):
        penalty = BudgetPenalty(profiler, budget_madds) if budget_madds is not None else None
        strat = _oneshot_class(strategy)(penalty=penalty, arc_learning_rate=3e-3)
        ev = make_evaluator(data, max_epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
                            accelerator=device, enable_progress_bar=progress)
        exp = NasExperiment(space, ev, strat)
        exp.config.experiment_working_directory = workdir
        exp.run()
        interrupts.check()   # NNI stops on Ctrl-C and returns as if done
        sample = exp.export_top_models(formatter='dict')[0]
        if budget_madds is not None:
            probs = exp.strategy.oneshot_module.export_probs()
            sample = constrained_export(sample, probs, profiler, budget_madds, floor=lo)
        exp.stop()
    elif strategy == 'spos':
        ev = make_evaluator(data, max_epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
                            accelerator=device, enable_progress_bar=progress)
        # supernet paths only need to fit under the budget; the window applies to the evolution's picks
        under = lambda sample: profiler.profile(sample) <= budget_madds
        exp = NasExperiment(space, ev, RandomOneShot(filter=under if budget_madds is not None else None))
        exp.config.experiment_working_directory = workdir
        exp.run()
        interrupts.check()   # NNI stops on Ctrl-C and returns as if done
        exp.stop()
        evolution = Chain(RegularizedEvolution(population_size=max(4, trials // 2), sample_size=max(2, trials // 4),
                                               seed=seed),
                          Filter(lambda m: within(m.sample), metric_for_invalid=0.0))
        exp2 = NasExperiment(space, FunctionalEvaluator(_inherited_eval, data=data), evolution)
        exp2.config.max_trial_number = trials
        exp2.config.experiment_working_directory = workdir
        with patient_manager_start():
            exp2.run()
        interrupts.check()   # NNI stops on Ctrl-C and returns as if done
        best = max((m for m in exp2.strategy.list_models(sort=True, limit=None) if within(m.sample)),
                   key=lambda m: m.metric, default=None)
        if best is None:
            raise AutoSpaceError('SPOS found no architecture within the budget; raise --budget-madds or --trials')
        sample, metric = dict(best.sample), float(best.metric)
        exp2.stop()
    else:
        base = RegularizedEvolution(population_size=max(4, trials // 2), sample_size=max(2, trials // 4), seed=seed) \
            if strategy == 'evolution' else Random(seed=seed)
        strat = Chain(base, Filter(lambda m: within(m.sample), metric_for_invalid=0.0))
        ev = FunctionalEvaluator(trial_train, dataset=dataset_name, data_dir=data_dir, epochs=trial_epochs,
                                 batch_size=batch_size, lr=lr, seed=seed, limit=limit)
        exp = NasExperiment(space, ev, strat)
        exp.config.max_trial_number = trials
        exp.config.trial_concurrency = concurrency
        exp.config.experiment_working_directory = workdir
        exp.config.experiment_name = f'autospace-search-{strategy}'
        # if NNI's dispatcher dies the engine would wait forever; a duration cap ends the search instead
        exp.config.max_experiment_duration = f'{max(10, 3 * trials * max(1, trial_epochs))}m'
        with _TrialProgress(port, trials, enabled=progress, desc=f'search {strategy}'), patient_manager_start():
            exp.run(port=port)
            interrupts.check()   # NNI stops on Ctrl-C and returns as if done
        results = _results_from_metrics(exp)
        exp.stop()
        results = [r for r in results if within(r['sample'])]
        if not results:
            raise AutoSpaceError('no trial within the budget finished; raise --budget-madds or --trials')
        best = max(results, key=lambda r: r['metric'])
        sample, metric = best['sample'], best['metric']
    cost = learned.cost(sample)
    return {'skeleton': skeleton.to_dict(), 'sample': dict(sample), 'madds': cost.madds, 'params': cost.params,
            'budget_madds': budget_madds, 'budget_window': None if budget_madds is None else [lo, budget_madds],
            'search_metric': metric, 'strategy': strategy, 'seed': seed,
            'space': learned.provenance.get('kind', 'learned'), 'search_wall_time_s': round(time.time() - t0, 2)}


class _TrialProgress:
    """A progress bar of finished trials, polled from the NNI manager's REST API in a daemon thread."""

    def __init__(self, port: int, total: int, *, enabled: bool, desc: str):
        self.port, self.total, self.enabled, self.desc = port, total, enabled, desc
        self._stop = None

    def __enter__(self):
        if not self.enabled:
            return self
        import threading
        from tqdm.auto import tqdm
        self.bar = tqdm(total=self.total, desc=self.desc, unit='trial', dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(2.0):
            self._poll_once()

    def _poll_once(self):
        import urllib.request
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{self.port}/api/v1/nni/trial-jobs', timeout=5) as r:
                jobs = json.loads(r.read())
        except Exception:   # the manager is starting or gone: try again later
            return
        done = sum(j['status'] in ('SUCCEEDED', 'FAILED', 'USER_CANCELED', 'SYS_CANCELED') for j in jobs)
        failed = sum(j['status'] == 'FAILED' for j in jobs)
        self.bar.n = min(done, self.total)
        self.bar.set_postfix(running=sum(j['status'] == 'RUNNING' for j in jobs), failed=failed)

    def __exit__(self, *exc):
        if self._stop is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._poll_once()   # the manager is still up until exp.stop(): show the final count
            self.bar.refresh()
            self.bar.close()
        return False


def constrained_export(sample: Dict[str, str], probs: Dict[str, Dict[str, float]], profiler: AnalyticCostProfiler,
                       budget: float, floor: Optional[float] = None) -> Dict[str, str]:
    """The argmax architecture, moved into ``[floor, budget]``: while it is over the budget, take the swap
    to a cheaper candidate that loses the least log-probability per MAdd saved; while it is under
    ``floor``, the swap to a costlier candidate that stays within the budget and loses the least
    log-probability per MAdd added. A soft penalty alone lands wherever the training got to; this makes
    every one-shot export fill the budget without exceeding it."""
    import math

    def logp(dist, c):
        return math.log(max(float(dist[c]), 1e-12))

    def best_swap(direction):
        total, best = profiler.profile(sample), None
        for label, dist in probs.items():
            cur = sample[label]
            cur_cost = profiler.block_cost(label, cur)
            for cand in dist:
                delta = (profiler.block_cost(label, cand) - cur_cost) * direction
                if delta <= 0 or (direction > 0 and total + delta > budget):
                    continue
                loss = (logp(dist, cur) - logp(dist, cand)) / delta
                if best is None or loss < best[0]:
                    best = (loss, label, cand)
        return best

    sample = dict(sample)
    while profiler.profile(sample) > budget:
        best = best_swap(-1)
        if best is None:
            break
        sample[best[1]] = best[2]
    while floor is not None and profiler.profile(sample) < floor:
        best = best_swap(+1)
        if best is None:
            break
        sample[best[1]] = best[2]
    return sample


def cost_range(learned: LearnedSpace) -> Tuple[float, float]:
    """MAdds of the cheapest and of the priciest network in ``learned`` (each block's cheapest / priciest
    candidate; a network's cost is the sum of its blocks' and the fixed parts')."""
    profiler = AnalyticCostProfiler(learned.skeleton)
    return tuple(profiler.profile({spec.label: pick(learned.candidates(spec),
                                                    key=lambda c: profiler.block_cost(spec.label, c))
                                   for spec in learned.block_specs()})
                 for pick in (min, max))


def _results_from_metrics(exp) -> list:
    """Every finished trial's (sample, metric), read from the FINAL metric dicts themselves."""
    out = []
    for rec in exp.export_data() if hasattr(exp, 'export_data') else []:
        value = rec.value
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict) and value.get('arch'):
            out.append({'sample': json.loads(value['arch']), 'metric': float(value['default']),
                        'trial': rec.trialJobId, 'parameter_id': rec.parameter})
    return out
