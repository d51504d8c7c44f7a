"""BudgetTuner: wraps NNI tuners and never proposes an architecture over the budget; the experiment configs
are valid NNI configs."""

import json
from pathlib import Path

import numpy as np
import pytest

from autospace_nni.space.learned import LearnedSpace
from autospace_nni.tuner import BudgetTuner

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / 'experiment_configs' / 'learned_space_digits.json'


@pytest.mark.parametrize('inner', ['TPE', 'Random', 'Evolution'])
def test_never_proposes_over_budget_and_learns_from_results(inner):
    space = LearnedSpace.load(SPACE)
    search_space = json.loads((ROOT / 'experiment_configs' / 'search_space_digits.json').read_text())
    assert search_space == space.to_nni_search_space()                 # the shipped file is current
    budget = 300_000                                                    # below the space's median (~440K)
    tuner = BudgetTuner(str(SPACE), budget, tuner=inner, tuner_args={'seed': 0} if inner != 'Evolution' else {'population_size': 8})
    tuner.update_search_space(search_space)
    rs = np.random.RandomState(0)
    costs = []
    for pid in range(25):
        params = tuner.generate_parameters(pid)
        cost = space.cost(params).madds
        costs.append(cost)
        tuner.receive_trial_result(pid, params, float(rs.rand()))
    assert max(costs) <= budget
    assert tuner.rejected > 0            # the inner tuner did propose over-budget architectures; none ran
    assert len({json.dumps(tuner.proposed[p], sort_keys=True) for p in range(25)}) > 5


def test_concurrent_ids_interleave():
    tuner = BudgetTuner(str(SPACE), 300_000, tuner='TPE', tuner_args={'seed': 1})
    tuner.update_search_space(LearnedSpace.load(SPACE).to_nni_search_space())
    a, b = tuner.generate_parameters(0), tuner.generate_parameters(1)      # two trials in flight
    tuner.receive_trial_result(1, b, 0.5)
    tuner.receive_trial_result(0, a, 0.7)
    # both results reached the inner TPE under their own ids, whatever the order they came back in
    assert not tuner.inner._running_params
    assert set(tuner.inner._params) >= {0, 1}
    c = tuner.generate_parameters(2)
    space = LearnedSpace.load(SPACE)
    assert set(c) == set(space.to_nni_search_space()) and space.cost(c).madds <= 300_000


@pytest.mark.parametrize('inner', ['TPE', 'Evolution'])
def test_nni_mispaired_trial_end_does_not_kill_the_inner_tuner(inner):
    """NNI 3.0 at concurrency > 1 (microsoft/nni #5726) may end the trial of parameter 1 under id 1 while that
    trial really ran parameter 0, before parameter 1's own trial reports: given straight to NNI's TPE, its
    result then raises KeyError (#5689), which kills NNI's dispatcher and hangs the experiment."""
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    search_space = LearnedSpace.load(SPACE).to_nni_search_space()
    raw = TpeTuner(seed=0)
    raw.update_search_space(search_space)
    a, b = raw.generate_parameters(0), raw.generate_parameters(1)
    raw.receive_trial_result(0, a, 0.7)
    raw.trial_end(1, True)                        # the mispaired end: id 1's trial is still running
    with pytest.raises(KeyError):
        raw.receive_trial_result(1, b, 0.6)       # the bug, in NNI's own tuner

    args = {'seed': 0} if inner == 'TPE' else {'population_size': 4}
    tuner = BudgetTuner(str(SPACE), 300_000, tuner=inner, tuner_args=args)
    tuner.update_search_space(search_space)
    a, b, c = (tuner.generate_parameters(i) for i in range(3))
    tuner.receive_trial_result(0, a, 0.7)
    tuner.trial_end(1, True)                      # mispaired: held until id 1's result
    tuner.trial_end(0, True)
    tuner.receive_trial_result(1, b, 0.6)         # no KeyError: the held end follows the result
    assert not tuner._held_ends
    tuner.trial_end(2, False)                     # a real failure: no result ever comes
    assert not tuner._held_ends                   # every proposed trial has ended: passed on as failed
    if inner == 'TPE':
        losses = {r.loss for r in next(iter(tuner.inner._history.values()))}
        assert not tuner.inner._running_params and {-0.7, -0.6} <= losses    # both results reached TPE
    d = tuner.generate_parameters(3)              # the inner tuner is alive and in budget
    assert LearnedSpace.load(SPACE).cost(d).madds <= 300_000


def test_bad_arguments_are_clear():
    too_low = BudgetTuner(str(SPACE), 10)     # the space (torch) loads on first use, after NNI has connected
    with pytest.raises(ValueError, match='below the cheapest architecture'):
        too_low.update_search_space(LearnedSpace.load(SPACE).to_nni_search_space())
    with pytest.raises(ValueError, match='unknown tuner'):
        BudgetTuner(str(SPACE), 300_000, tuner='Nope')
    with pytest.raises(ValueError, match='not a file'):
        BudgetTuner('no_such_space.json', 300_000)
    with pytest.raises(ValueError, match='needs skeleton'):
        BudgetTuner('manual', 300_000)
    tuner = BudgetTuner(str(SPACE), 300_000)
    with pytest.raises(ValueError, match='export-nni-space'):
        tuner.update_search_space({'conv1': {'_type': 'choice', '_value': [1, 2]}})


def test_experiment_configs_are_valid_nni_configs(tmp_path):
    import yaml
    from nni.experiment.config import ExperimentConfig
    from autospace_nni.tuner import BudgetTunerClassArgsValidator
    key = tmp_path / 'id_rsa'
    key.write_text('not a real key\n')
    names = sorted(p.name for p in (ROOT / 'experiment_configs').glob('*.yml') if not p.name.endswith('_meta.yml'))
    assert {'evolve_digits.yml', 'search_learned_space.yml', 'search_learned_space_budget.yml',
            'search_remote.example.yml'} <= set(names)
    for name in names:
        doc = yaml.safe_load((ROOT / 'experiment_configs' / name).read_text())
        for m in doc['trainingService'].get('machineList', []):
            m['sshKeyFile'] = str(key)       # the example's key path does not exist here
        path = ROOT / 'experiment_configs' / f'.check-{name}'
        try:
            path.write_text(yaml.safe_dump(doc))
            ExperimentConfig.load(str(path)).validate()
        finally:
            path.unlink()
        if doc['tuner'].get('className') == 'autospace_nni.tuner.BudgetTuner':
            BudgetTunerClassArgsValidator().validate_class_args(**doc['tuner']['classArgs'])
    meta = yaml.safe_load((ROOT / 'experiment_configs' / 'budget_tuner_meta.yml').read_text())
    assert meta['className'] == 'autospace_nni.tuner.BudgetTuner'


def test_building_the_tuner_imports_no_torch():
    """NNI's dispatcher builds the tuner before it connects and the manager waits only 10 s: torch (~7-10 s
    from a cold disk) must wait for the first command."""
    import subprocess
    import sys
    code = ('import sys; from autospace_nni.tuner import BudgetTuner; '
            f't = BudgetTuner(r"{SPACE}", 300000, tuner="TPE"); '
            'print(sorted(m for m in ("torch", "torchvision", "pytorch_lightning") if m in sys.modules))')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == '[]', r.stdout + r.stderr[-2000:]
