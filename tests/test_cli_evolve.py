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
    assert run['status'] == 'done' and run['config']['options']['population_size'] == 8
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
    (['--sample-k', '0'], '--sample-k must be an integer >= 1, got 0'),
    (['--beta', 'nan'], '--beta must be a finite number in [0, 1), got nan'),
    (['--population-size', '2', '--sample-k', '3'], '--sample-k (3) cannot exceed population_size (2)'),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    out = tmp_path / 'run'
    r = _cli('evolve', '--out', str(out), '--iterations', '2', '--no-progress', *args)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    assert needle in r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (out / 'run.json').exists()


@pytest.mark.parametrize('args, needle', [
    (['--reference', 'e6_relu6:1-0=dw3x3'], 'cycles are not allowed'),
    (['--reference', 'e6_relu6:0-1=dw3x3,2-3=skip'], 'not reachable'),
    (['--max-rollbacks', '-1'], '--max-rollbacks must be an integer >= 0'),
])
def test_bad_cells_and_options_are_one_line_exit_2(tmp_path, args, needle):
    out = tmp_path / 'run'
    r = _cli('evolve', '--out', str(out), '--iterations', '2', '--no-progress', *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize('text, needle', [
    ('sample_k: 3\niterations: [1\n', 'not valid YAML at line 3'),
    ('sample_kk: 3\n', "unknown option 'sample_kk' (did you mean sample_k?)"),
    ('sample_k: three\n', 'sample_k must be int'),
    ('- a\n- b\n', 'must be a mapping'),
    ('fitness: foo\n', "fitness must be one of 'alpha-sum', 'alpha-gates', 'paired-eval', got 'foo'"),
    ('population: 8\npopulation_size: 8\n', 'population_size and population'),
    ('no_progress: 3\n', 'no_progress must be true or false'),
])
def test_invalid_yaml_config_is_one_line_exit_2(run_dir, tmp_path, text, needle):
    cfg = tmp_path / 'evolve.yml'
    cfg.write_text(text)
    out, _ = run_dir
    before = (out / 'learned_space.json').read_bytes()
    r = _cli('evolve', '--config', str(cfg), '--out', str(out), '--overwrite')
    assert r.returncode == 2 and needle in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (out / 'learned_space.json').read_bytes() == before       # --overwrite never got to act


def test_yaml_config_sets_defaults_and_flags_win(tmp_path):
    from autospace_nni.cli_parser import apply_config_file as _apply_config_file, build_parser
    cfg = tmp_path / 'evolve.yml'
    cfg.write_text('sample-k: 4\niterations: 9\nfitness: alpha-gates\nbudget_madds: 2.5e5\nno_progress: true\n')
    args = _apply_config_file(build_parser(), ['evolve', '--config', str(cfg), '--iterations', '3', '--out', 'x'])
    assert (args.sample_k, args.iterations, args.fitness, args.budget_madds, args.no_progress) == \
        (4, 3, 'alpha-gates', 2.5e5, True)


def test_search_rejects_other_format_versions_and_skeletons(run_dir, tmp_path):
    doc = json.loads((run_dir[0] / 'learned_space.json').read_text())
    doc['format_version'] = 7
    (tmp_path / 'v7.json').write_text(json.dumps(doc))
    r = _cli('search', '--space', str(tmp_path / 'v7.json'), '--strategy', 'darts', '--out', str(tmp_path / 's'))
    assert r.returncode == 2 and 'format version 7 is not supported' in r.stderr
    r = _cli('search', '--space', str(run_dir[0] / 'learned_space.json'), '--skeleton', 'mobile-28',
             '--strategy', 'darts', '--out', str(tmp_path / 's'))
    assert r.returncode == 2 and 'skeleton' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 's' / 'arch.json').exists()


def test_report_explains_the_run(run_dir, tmp_path):
    out, _ = run_dir
    r = _cli('report', str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    page = (out / 'report.html').read_text()
    for fig in ('fitness', 'diversity', 'madds', 'cells', 'costs'):
        assert f'report/{fig}.png' in page
        png = out / 'report' / f'{fig}.png'
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000
    learned = LearnedSpace.load(out / 'learned_space.json')
    for g, cells in learned.groups.items():
        assert g in page
        assert all(str(c.cell).replace('>', '&gt;') in page for c in cells)   # the whole learned space is listed
    assert 'digits' in page and 'tiny-8' in page
    r = _cli('report', str(tmp_path))
    assert r.returncode == 2 and 'no evolve run' in r.stderr and len(r.stderr.strip().splitlines()) == 1
