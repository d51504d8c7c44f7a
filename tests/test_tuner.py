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


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match='below the cheapest architecture'):
        BudgetTuner(str(SPACE), 10)
    with pytest.raises(ValueError, match='unknown tuner'):
        BudgetTuner(str(SPACE), 300_000, tuner='Nope')
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
