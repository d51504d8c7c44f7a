"""A real ``nnictl create`` of ``experiment_configs/evolve_digits.yml``: its NNI manager, its trials, its REST
API and its web UI in headless Chromium . The experiment is always stopped, even on failure."""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow      # long: run by .ci/run after the default suite (-m slow)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _get(port, endpoint):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/{endpoint}', timeout=10) as r:
        return json.loads(r.read())


def _port_open(port):
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) == 0


def _log_tails(exp_dir, lines=40):
    """The last lines of the experiment's manager and dispatcher logs and of each trial's stderr."""
    out = []
    for path in [exp_dir / 'log' / 'nnimanager.log', exp_dir / 'log' / 'dispatcher.log',
                 *sorted(exp_dir.glob('environments/*/trials/*/trial.log'))]:
        if path.exists():
            out.append(f'--- {path.relative_to(exp_dir)}\n' + '\n'.join(path.read_text(errors='replace').splitlines()[-lines:]))
    return '\n'.join(out)


@contextlib.contextmanager
def _launch(work, name, expect='DONE', **overrides):
    """``nnictl create`` a copy of ``experiment_configs/<name>`` (absolute code dir, private working dir, the
    test's interpreter for the trial), wait until it ends, and always stop it."""
    config = yaml.safe_load((ROOT / 'experiment_configs' / name).read_text())
    code = ROOT / 'experiment_configs'
    config['trialCodeDirectory'] = str(code)
    if 'searchSpaceFile' in config:
        config['searchSpaceFile'] = str(code / config['searchSpaceFile'])
    if 'codeDirectory' in config.get('tuner', {}):
        config['tuner']['codeDirectory'] = str(code)
    config['experimentWorkingDirectory'] = str(work / 'nni-experiments')
    config['trialCommand'] = config['trialCommand'].replace('../.venv/bin/python', sys.executable)
    config.update(overrides)
    path = work / name
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    env = dict(os.environ, PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}')
    r = subprocess.run([str(BIN / 'nnictl'), 'create', '--config', str(path), '--port', str(port)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=str(code))
    match = re.search(r'nnictl stop (\w+)', r.stdout)
    exp_id = match.group(1) if match else None
    try:
        assert r.returncode == 0 and exp_id, r.stdout[-2000:] + r.stderr[-2000:]
        deadline = time.time() + 600           # under pytest's 900 s, so a hang fails with its logs
        status = None
        while time.time() < deadline:
            status = _get(port, 'check-status')
            if status['status'] in ('DONE', 'ERROR', 'STOPPED'):
                break
            time.sleep(3)
        if status['status'] != expect:
            pytest.fail(f'experiment {exp_id} ended {status} after {time.time() - deadline + 600:.0f} s\n'
                        + _log_tails(work / 'nni-experiments' / exp_id))
        yield {'port': port, 'id': exp_id, 'status': status, 'work': work}
    finally:
        subprocess.run([str(BIN / 'nnictl'), 'stop', exp_id or '--all'], capture_output=True, timeout=120, env=env)
        for _ in range(30):
            if not _port_open(port):
                break
            time.sleep(1)
        assert not _port_open(port), f'NNI manager still listening on {port}'


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    with _launch(tmp_path_factory.mktemp('nnictl'), 'evolve_digits.yml', maxTrialNumber=2) as exp:
        yield exp


def test_evolve_experiment_runs_every_trial_with_live_metrics(experiment):
    port = experiment['port']
    assert experiment['status']['status'] == 'DONE', experiment['status']
    trials = _get(port, 'trial-jobs')
    assert len(trials) == 2 and all(t['status'] == 'SUCCEEDED' for t in trials), trials
    metrics = _get(port, 'metric-data')
    for t in trials:
        mine = [m for m in metrics if m['trialJobId'] == t['trialJobId']]
        periodical = [json.loads(json.loads(m['data'])) for m in mine if m['type'] == 'PERIODICAL']
        final = [json.loads(json.loads(m['data'])) for m in mine if m['type'] == 'FINAL']
        assert len(periodical) == 4 and len(final) == 1                    # one per iteration, then the end
        assert [p['iteration'] for p in periodical] == [0, 1, 2, 3]
        assert all(0 <= p['default'] <= 1 and p['expected_madds'] > 0 for p in periodical)
        final = final[0]
        assert Path(final['learned_space']).exists()
        learned = json.loads(Path(final['learned_space']).read_text())
        assert learned['budget_madds'] == final['params']['budget_madds']  # the tuner's budget reached the run
        assert (learned['references'] is None) == (final['params']['reference'] == 'none')


def test_web_ui_shows_the_experiment_and_its_trials(experiment):
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it when run as root)")
    port, exp_id = experiment['port'], experiment['id']
    shots = experiment['work']
    texts = {}
    for page in ('oview', 'detail'):
        with tempfile.TemporaryDirectory() as profile:
            common = [chromium, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', '--window-size=1400,1000',
                      '--virtual-time-budget=10000']
            url = f'http://127.0.0.1:{port}/{page}'
            dom = subprocess.run([*common, '--dump-dom', url], capture_output=True, text=True, timeout=120)
            shot = subprocess.run([*common, f'--screenshot={shots / f"{page}.png"}', url], capture_output=True,
                                  text=True, timeout=120)
        assert shot.returncode == 0 and (shots / f'{page}.png').stat().st_size > 10_000, shot.stderr[-1000:]
        texts[page] = dom.stdout
    assert exp_id in texts['oview'] and 'autospace-evolve-digits' in texts['oview']
    assert 'DONE' in texts['oview'] or 'Done' in texts['oview']
    trials = _get(port, 'trial-jobs')
    assert all(t['trialJobId'] in texts['detail'] for t in trials)        # every trial is listed
    keep = os.environ.get('AUTOSPACE_KEEP_SCREENSHOTS')
    if keep:
        for page in ('oview', 'detail'):
            shutil.copy(shots / f'{page}.png', Path(keep) / f'webui-{page}.png')


def test_budget_tuner_search_at_concurrency_2_stays_in_budget(tmp_path):
    """search_learned_space_budget.yml: our tuner wrapping TPE, 2 trials at a time; every result carries its
    own architecture (NNI 3.0 may mispair trials and parameters in its UI, #5726), and each is in budget."""
    from autospace_nni.space.learned import LearnedSpace
    space = LearnedSpace.load(ROOT / 'experiment_configs' / 'learned_space_digits.json')
    config = yaml.safe_load((ROOT / 'experiment_configs' / 'search_learned_space_budget.yml').read_text())
    budget = config['tuner']['classArgs']['budget_madds']
    with _launch(tmp_path, 'search_learned_space_budget.yml') as exp:
        assert exp['status']['status'] == 'DONE', exp['status']
        trials = _get(exp['port'], 'trial-jobs')
        assert len(trials) == 4 and all(t['status'] == 'SUCCEEDED' for t in trials), trials
        finals = [json.loads(json.loads(m['data'])) for m in _get(exp['port'], 'metric-data') if m['type'] == 'FINAL']
    assert len(finals) == 4
    for f in finals:
        sample = json.loads(f['arch'])
        assert space.cost(sample).madds == f['madds'] <= budget      # joined on the arch inside the metric
        assert 0 <= f['default'] <= 1


def test_a_tuner_error_ends_the_experiment_in_error_with_its_message(tmp_path):
    """NNI 3.0's dispatcher swallows a tuner's exception and the experiment stays RUNNING for ever; BudgetTuner
    reports it: the experiment ends in ERROR within seconds and the manager's log names the cause."""
    config = yaml.safe_load((ROOT / 'experiment_configs' / 'search_learned_space_budget.yml').read_text())
    tuner = dict(config['tuner'], codeDirectory=str(ROOT / 'experiment_configs'),
                 classArgs=dict(config['tuner']['classArgs'], budget_madds=10))
    start = time.time()
    with _launch(tmp_path, 'search_learned_space_budget.yml', expect='ERROR', tuner=tuner) as exp:
        assert time.time() - start < 120
        log = (tmp_path / 'nni-experiments' / exp['id'] / 'log' / 'nnimanager.log').read_text()
    assert 'below the cheapest architecture' in log


def test_compare_spaces_runs_both_spaces_in_one_experiment(tmp_path):
    config = yaml.safe_load((ROOT / 'experiment_configs' / 'compare_spaces.yml').read_text())
    with _launch(tmp_path, 'compare_spaces.yml', maxTrialNumber=6,
                 trialCommand=config['trialCommand'].replace('../.venv/bin/python', sys.executable)
                 + ' --epochs 1 --limit 400') as exp:
        assert exp['status']['status'] == 'DONE', exp['status']
        trials = _get(exp['port'], 'trial-jobs')
        assert len(trials) == 6 and all(t['status'] == 'SUCCEEDED' for t in trials), trials
        finals = [json.loads(json.loads(m['data'])) for m in _get(exp['port'], 'metric-data') if m['type'] == 'FINAL']
    assert {f['space'] for f in finals} == {'learned', 'manual'}
    manual_cells = {'e3_relu6:0-1=dw3x3', 'e3_relu6:0-1=dw5x5', 'e3_relu6:0-1=dw7x7', 'e6_relu6:0-1=dw3x3',
                    'e6_relu6:0-1=dw5x5', 'e6_relu6:0-1=dw7x7', 'zero'}
    for f in finals:   # each result's architecture belongs to the space it names
        cells = set(json.loads(f['arch']).values())
        assert (cells <= manual_cells) == (f['space'] == 'manual'), f


def test_budget_tuner_registers_the_nni_way(tmp_path):
    env = dict(os.environ, NNI_CONFIG_DIR=str(tmp_path), PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}')
    meta = ROOT / 'experiment_configs' / 'budget_tuner_meta.yml'
    r = subprocess.run([str(BIN / 'nnictl'), 'algo', 'register', '--meta', str(meta)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(BIN / 'nnictl'), 'algo', 'list'], capture_output=True, text=True, timeout=120, env=env)
    assert 'AutoSpaceBudgetTuner' in r.stdout
    # what NNI's dispatcher does for `tuner: {name: AutoSpaceBudgetTuner, classArgs: ...}`
    code = ("from nni.tools.package_utils.tuner_factory import create_builtin_class_instance as c; "
            f"t = c('AutoSpaceBudgetTuner', {{'space': r'{ROOT / 'experiment_configs' / 'learned_space_digits.json'}', "
            "'budget_madds': 300000}, 'tuners'); print(type(t).__name__, t.budget_madds)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and 'BudgetTuner 300000.0' in r.stdout, r.stderr[-2000:]
    r = subprocess.run([str(BIN / 'nnictl'), 'algo', 'unregister', 'AutoSpaceBudgetTuner'], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0
