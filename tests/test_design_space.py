"""RegNet-style design-space check: sampling at matched MAdds, brief training, resume, EDF plot."""

import json
import subprocess
import sys

import numpy as np
import pytest

from autospace_nni.design_space import edf, sample_architectures
from autospace_nni.errors import AutoSpaceError
from autospace_nni.space import Skeleton
from autospace_nni.space.learned import manual_space


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'autospace_nni.cli', *args], capture_output=True, text=True,
                          timeout=600)


def test_samples_are_distinct_and_inside_the_madds_range():
    space = manual_space(Skeleton.preset('tiny-8'))
    got = sample_architectures(space, 25, seed=3, madds_range=(2.5e5, 4e5))
    assert len({json.dumps(s, sort_keys=True) for s in got}) == 25
    assert all(2.5e5 <= space.cost(s).madds <= 4e5 for s in got)
    assert got[:10] == sample_architectures(space, 10, seed=3, madds_range=(2.5e5, 4e5))   # a prefix: resumable
    with pytest.raises(AutoSpaceError, match='widen --madds-range'):
        sample_architectures(space, 5, madds_range=(1, 2), max_tries=500)


def test_edf_is_the_empirical_cdf():
    x, y = edf([0.3, 0.1, 0.2, 0.2])
    assert list(x) == [0.1, 0.2, 0.2, 0.3] and list(y) == [0.25, 0.5, 0.75, 1.0]


def test_sample_space_resumes_and_compare_draws_edfs(tmp_path):
    a, m = tmp_path / 'learned', tmp_path / 'manual'
    common = ['--epochs', '1', '--madds-range', '2e5', '4e5', '--quiet', '--limit', '400']
    r = _cli('sample-space', 'experiment_configs/learned_space_digits.json', '--n', '2', '--out', str(a), *common)
    assert r.returncode == 0, r.stderr[-2000:]
    first = [json.loads(l) for l in (a / 'design_space.jsonl').read_text().splitlines()]
    r = _cli('sample-space', 'experiment_configs/learned_space_digits.json', '--n', '3', '--out', str(a), *common)
    assert r.returncode == 0, r.stderr[-2000:]
    after = [json.loads(l) for l in (a / 'design_space.jsonl').read_text().splitlines()]
    assert after[:2] == first and len(after) == 3               # the two finished ones were not retrained
    r = _cli('sample-space', 'manual', '--skeleton', 'tiny-8', '--n', '2', '--out', str(m), *common)
    assert r.returncode == 0, r.stderr[-2000:]
    # the same architectures trained with other seeds (the retest of the EDF's training noise)
    r = _cli('sample-space', 'manual', '--skeleton', 'tiny-8', '--n', '2', '--out', str(tmp_path / 'again'),
             '--train-seed', '5', *common)
    assert r.returncode == 0, r.stderr[-2000:]
    once, again = ([json.loads(l) for l in (f / 'design_space.jsonl').read_text().splitlines()]
                   for f in (m, tmp_path / 'again'))
    assert [x['sample'] for x in again] == [x['sample'] for x in once]
    assert [x['train_seed'] for x in again] == [5, 6] and [x['train_seed'] for x in once] == [0, 1]
    png = tmp_path / 'edf.png'
    r = _cli('compare', str(a), str(m), '--out', str(png))
    assert r.returncode == 0, r.stderr[-2000:]
    assert png.read_bytes()[:4] == b'\x89PNG'
    rows = json.loads(png.with_suffix('.json').read_text())
    assert [(x['space'], x['n']) for x in rows] == [('learned', 3), ('manual', 2)]
    assert all(2e5 <= x['madds_min'] <= x['madds_max'] <= 4e5 for x in rows)
    assert np.isclose(rows[1]['mean_error'], np.mean([json.loads(l)['error'] for l in
                                                      (m / 'design_space.jsonl').read_text().splitlines()]))
    r = _cli('compare', str(tmp_path / 'nothing'))
    assert r.returncode == 2 and 'sample-space' in r.stderr


def test_train_seed_retrains_the_same_architectures_with_other_seeds(tmp_path):
    from autospace_nni.data import load_dataset
    from autospace_nni.design_space import load_samples, sample_space
    space, data = manual_space(Skeleton.preset('tiny-8')), load_dataset('digits', seed=0, limit=400)
    kw = dict(n=2, epochs=1, madds_range=(2e5, 4e5), progress=False)
    first = sample_space(space, data, tmp_path / 'a', **kw)
    same = sample_space(space, data, tmp_path / 'b', train_seed=0, **kw)     # the default's own training seeds
    other = sample_space(space, data, tmp_path / 'c', train_seed=7, **kw)
    assert [r['sample'] for r in other] == [r['sample'] for r in first]      # the same architectures
    assert [r['train_seed'] for r in first] == [0, 1] and [r['train_seed'] for r in other] == [7, 8]
    assert [r['error'] for r in same] == [r['error'] for r in first]         # training is a function of its seed
    assert [r['error'] for r in other] != [r['error'] for r in first]        # deterministic, so no flake
    assert load_samples(tmp_path / 'c') == other
