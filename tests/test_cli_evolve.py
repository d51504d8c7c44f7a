"""``autospace-nni evolve`` / ``demo``: the run folder, TensorBoard logs, refusals and one-line errors."""

import json
import subprocess
import sys

import pytest

from autospace_nni import LearnedSpace


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'autospace_nni.cli', *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('evolve') / 'run'
    r = _cli('evolve', '--dataset', 'digits', '--skeleton', 'tiny-8', '--iterations', '4', '--seed', '1',
             '--population', '8', '--sample-k', '2', '--warmup', '1', '--out', str(out), '--no-progress')
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_evolve_writes_the_run_folder(run_dir):
    out, r = run_dir
    learned = LearnedSpace.load(out / 'learned_space.json')
    assert learned.seed == 1 and learned.provenance['iterations'] == 4
    assert learned.provenance['dataset'] == 'digits'
    history = [json.loads(line) for line in (out / 'history.jsonl').read_text().splitlines()]
    assert [h['iteration'] for h in history] == [0, 1, 2, 3]
    assert history[0]['warmup'] and not history[1]['warmup']
    run = json.loads((out / 'run.json').read_text())
    assert run['status'] == 'done' and run['config']['population'] == 8
    # the table is printed: group, cell text, fitness, MAdds
    assert 'group' in r.stdout and 'fitness' in r.stdout and 'e6_relu6:0-1=dw3x3' in r.stdout
    assert 'Traceback' not in r.stderr


def test_tensorboard_has_the_iteration_metrics(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out, _ = run_dir
    events = list((out / 'tb').rglob('events.out.tfevents.*'))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    for tag in ['val_acc', 'expected_madds', 'fitness_mean/s1_first', 'fitness_max/s2_rest', 'diversity/s3_first',
                'churn/s1_first']:
        assert tag in tags, (tag, sorted(tags))
    assert len(acc.Scalars('val_acc')) == 4


def test_refuses_an_existing_run_without_overwrite(run_dir):
    out, _ = run_dir
    before = (out / 'learned_space.json').read_bytes()
    r = _cli('evolve', '--out', str(out), '--iterations', '2', '--no-progress')
    assert r.returncode == 2
    assert 'already holds a run' in r.stderr and '--overwrite' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (out / 'learned_space.json').read_bytes() == before


@pytest.mark.parametrize('args, needle', [
    (['--reference', 'e6_relu6:0-1=dw4x4'], "unknown op 'dw4x4'"),
    (['--budget-madds', '1000'], 'below the fixed layers'),
    (['--penalty', 'add'], 'only applies with --budget-madds'),
    (['--dataset', 'fashion-mnist', '--data-dir', '/nonexistent'], 'apt-get install -y dataset-fashion-mnist'),
    (['--skeleton', 'mobile-28'], 'pick a matching --skeleton'),
    (['--sample-k', '0'], '--sample-k must be >= 1'),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    out = tmp_path / 'run'
    r = _cli('evolve', '--out', str(out), '--iterations', '2', '--no-progress', *args)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    assert needle in r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (out / 'run.json').exists()
