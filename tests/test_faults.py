"""Numerical faults: an injected NaN rolls the run back to its last checkpoint with lower learning rates;
repeated faults end it with one clear error."""

import json
import math

import pytest
import torch
from pytorch_lightning import Callback

from autospace_nni import AutoSpace, ExplorationSpace, Skeleton, load_dataset, make_evaluator
from autospace_nni.errors import NumericalFaultError
from autospace_nni.pipeline import EvolveConfig, run_evolve


class InjectNaN(Callback):
    """Poison one weight (or α) with NaN at chosen training batches, as a diverging step would."""

    def __init__(self, at_batches, target='weight'):
        self.at = set(at_batches)
        self.target = target
        self.seen = 0
        self.fired = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen += 1
        if self.seen in self.at or ('always' in self.at and self.seen > 30):
            params = [(n, p) for n, p in pl_module.training_module.named_parameters()
                      if ('alpha' in n) == (self.target == 'alpha')]
            name, p = params[0]
            with torch.no_grad():
                p.view(-1)[0] = float('nan')
            self.fired.append((self.seen, name))


def _strategy(ckdir, **kw):
    torch.manual_seed(0)
    return AutoSpace(population_size=8, sample_k=2, warmup_iterations=1, patience=0, seed=1, iterations=5,
                     checkpoint_dir=None if ckdir is None else str(ckdir), arc_learning_rate=0.03, **kw)


def _finite_fitness(learned):
    return all(math.isfinite(c.fitness) for cells in learned.groups.values() for c in cells)


@pytest.mark.parametrize('target', ['weight', 'alpha'])
def test_nan_rolls_back_with_lower_learning_rate_and_finishes(tmp_path, target):
    data = load_dataset('digits', seed=0)
    # batch 40 lies in iteration >= 1 (an iteration is one pass over the held-out split), so α is trained
    inject = InjectNaN([40], target=target)
    s = _strategy(tmp_path / 'ck')
    ev = make_evaluator(data, max_epochs=5, batch_size=32, seed=0, callbacks=[inject])
    learned = s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev)
    assert inject.fired and ('alpha' in inject.fired[0][1]) == (target == 'alpha')
    assert len(s.rollbacks) == 1 and 'non-finite' in s.rollbacks[0]['error']
    assert s.lr_scale == 0.5 and s.iteration == 5 and s.finished
    assert [r['iteration'] for r in s.history] == [0, 1, 2, 3, 4]       # redone iterations are not doubled
    assert _finite_fitness(learned)
    assert all(torch.isfinite(p).all() for p in s.supernet.parameters())
    sched = ev.trainer.lr_scheduler_configs[0].scheduler
    assert sched.base_lrs == pytest.approx([0.05 * 0.5])                 # the weights' learning rate was halved
    lrs = [g['lr'] for opt in ev.trainer.optimizers for g in opt.param_groups]
    assert 0.03 * 0.5 in [pytest.approx(v) for v in lrs]                 # and α's Adam too
    assert learned.provenance['rollbacks'][0]['lr_scale'] == 0.5


def test_repeated_faults_stop_with_a_clear_error(tmp_path):
    data = load_dataset('digits', seed=0)
    s = _strategy(tmp_path / 'ck', max_rollbacks=2)
    ev = make_evaluator(data, max_epochs=5, batch_size=32, seed=0, callbacks=[InjectNaN(['always'])])
    with pytest.raises(NumericalFaultError, match='diverged 3 times') as err:
        s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev)
    assert '\n' not in str(err.value) and '--max-rollbacks' in str(err.value)
    assert [r['lr_scale'] for r in s.rollbacks] == [0.5, 0.25]           # each fault lowers the rates again


def test_without_checkpoints_a_fault_is_reported_not_rolled_back():
    data = load_dataset('digits', seed=0)
    s = _strategy(None)
    ev = make_evaluator(data, max_epochs=5, batch_size=32, seed=0, callbacks=[InjectNaN([5])])
    with pytest.raises(NumericalFaultError, match='checkpoint_dir'):
        s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev)


def test_cli_pipeline_records_the_rollback(tmp_path):
    inject = InjectNaN([20])
    cfg = EvolveConfig.from_flat(iterations=4, population_size=8, sample_k=2, warmup_iterations=1, seed=1, patience=0,
                                 arc_learning_rate=0.03, batch_size=32)
    learned, strategy = run_evolve(cfg, tmp_path / 'run', progress=False, callbacks=[inject])
    hist = [json.loads(l)['iteration'] for l in (tmp_path / 'run' / 'history.jsonl').read_text().splitlines()]
    assert inject.fired and hist == [0, 1, 2, 3]
    run = json.loads((tmp_path / 'run' / 'run.json').read_text())
    assert run['status'] == 'done' and len(run['rollbacks']) == 1
    assert json.loads((tmp_path / 'run' / 'learned_space.json').read_text())['provenance']['rollbacks']
