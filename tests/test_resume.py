"""Crash-safe, exact resume: checkpoints at iteration boundaries, SIGKILL, half-written checkpoints."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from autospace_nni import AutoSpace, ExplorationSpace, Skeleton, load_dataset, make_evaluator

ARGS = ['--iterations', '5', '--population', '8', '--sample-k', '2', '--warmup', '1', '--seed', '2',
        '--patience', '0', '--no-progress']


def _cli(*args, **kw):
    return [sys.executable, '-m', 'autospace_nni.cli', *args]


def _groups(out):
    return json.loads((out / 'learned_space.json').read_text())['groups']


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_and_half_written_checkpoint_resume_exactly(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    r = subprocess.run(_cli('evolve', '--out', str(a), *ARGS), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    hist = b / 'history.jsonl'
    p = subprocess.Popen(_cli('evolve', '--out', str(b), *ARGS), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while _lines(hist) < 3 and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert _lines(hist) >= 3
    (b / 'checkpoints' / '.tmp-999.ckpt').write_bytes(b'half a checkpoint')   # a write cut short
    # a kill in the middle of a checkpoint write leaves a truncated file: simulate it on the newest one
    ck = b / 'checkpoints' / 'last.ckpt'
    if ck.exists():
        data = ck.read_bytes()
        ck.write_bytes(data[:len(data) // 2])
    r = subprocess.run(_cli('evolve', '--resume', str(b), '--no-progress'), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _groups(a) == _groups(b)     # the same cells with the same fitness, to the last bit
    assert [json.loads(l)['iteration'] for l in hist.read_text().splitlines()] == [0, 1, 2, 3, 4]
    run = json.loads((b / 'run.json').read_text())
    assert run['status'] == 'done' and run['resumed_from']


def test_in_process_resume_matches_and_resume_errors(tmp_path):
    data = load_dataset('digits', seed=0)

    def make(ckdir):
        torch.manual_seed(0)
        s = AutoSpace(population_size=8, sample_k=2, warmup_iterations=1, patience=0, seed=2, iterations=4,
                      checkpoint_dir=str(ckdir), arc_learning_rate=0.03)
        return s, make_evaluator(data, max_epochs=4, batch_size=32, seed=0)

    class Stop(Exception):
        pass

    s, ev = make(tmp_path / 'A')
    full = s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev)
    s, ev = make(tmp_path / 'B')

    def stop(strategy, record):
        if record['iteration'] == 2:
            raise Stop()
    s.on_iteration_end.append(stop)
    with pytest.raises(Stop):
        s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev)
    ck = AutoSpace.find_checkpoint(tmp_path / 'B')
    assert ck and torch.load(ck, weights_only=True)['autospace']['evolution']['iteration'] == 2
    s, ev = make(tmp_path / 'B')
    resumed = s.evolve(ExplorationSpace(Skeleton.preset('tiny-8')), ev, resume_from=ck)
    assert resumed.to_dict()['groups'] == full.to_dict()['groups']
    # no complete checkpoint at all: None, and the CLI says so in one line
    for name in ('last.ckpt', 'prev.ckpt'):
        (tmp_path / 'B' / name).write_bytes(b'garbage')
    assert AutoSpace.find_checkpoint(tmp_path / 'B') is None
    r = subprocess.run(_cli('evolve', '--resume', str(tmp_path / 'nothing')), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and 'no run to resume' in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(_cli('evolve', '--resume', str(tmp_path / 'x'), '--overwrite'), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and 'contradict' in r.stderr


def test_a_kill_between_the_first_history_line_and_its_checkpoint_resumes_exactly(tmp_path):
    """The window a SIGKILL can land in at the end of iteration 0: its history line is written, the checkpoint
    that follows it is not, so the only checkpoint is the run's start. Resuming starts again (the exact
    resume) instead of refusing."""
    import shutil
    from autospace_nni.pipeline import EvolveConfig, run_evolve
    cfg = EvolveConfig.from_flat(iterations=3, population_size=8, sample_k=2, warmup_iterations=1, seed=3, patience=0)
    straight, _ = run_evolve(cfg, tmp_path / 'straight', progress=False)

    class Killed(Exception):
        pass

    snap = tmp_path / 'killed'

    def kill_after_the_history_line(strategy, record):
        shutil.copytree(tmp_path / 'run', snap)       # the folder as a SIGKILL would leave it, right here
        raise Killed()
    with pytest.raises(Killed):
        run_evolve(cfg, tmp_path / 'run', progress=False, on_iteration=kill_after_the_history_line)
    assert _lines(snap / 'history.jsonl') == 1
    state = torch.load(AutoSpace.find_checkpoint(snap / 'checkpoints'), weights_only=True)
    assert state['global_step'] == 0 and state['autospace']['evolution']['iteration'] == 0
    resumed, _ = run_evolve(cfg, snap, progress=False, resume=True)
    assert resumed.to_dict()['groups'] == straight.to_dict()['groups']
    assert [json.loads(l)['iteration'] for l in (snap / 'history.jsonl').read_text().splitlines()] == [0, 1, 2]


class _WritesAFile:
    """A pickle payload: unpickling it writes ``path`` (what a hostile checkpoint could do instead)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (_touch, (self.path,))


def _touch(path):
    with open(path, 'w') as f:
        f.write('code ran at load time')


def test_a_checkpoint_that_runs_code_on_load_is_refused_unrun(tmp_path):
    import dataclasses
    from autospace_nni.cli import main
    from autospace_nni.pipeline import EvolveConfig
    run, marker = tmp_path / 'run', tmp_path / 'pwned'
    (run / 'checkpoints').mkdir(parents=True)
    cfg = EvolveConfig.from_flat(iterations=2, population_size=8, sample_k=2)
    (run / 'run.json').write_text(json.dumps({'command': 'evolve', 'config': dataclasses.asdict(cfg)}))
    torch.save({'autospace': _WritesAFile(marker), 'state_dict': {}}, run / 'checkpoints' / 'last.ckpt')
    with pytest.raises(Exception):
        torch.load(run / 'checkpoints' / 'last.ckpt', weights_only=True)
    assert not marker.exists()
    assert AutoSpace.find_checkpoint(run / 'checkpoints') is None and not marker.exists()
    assert main(['evolve', '--resume', str(run), '--no-progress']) == 2
    assert not marker.exists()
    # the same file loaded the unsafe way would have run it: the test's payload is real
    torch.load(run / 'checkpoints' / 'last.ckpt', weights_only=False)
    assert marker.exists()


def _evolve_until(out, args, lines):
    """``evolve --out OUT ARGS`` started, returned once its history holds ``lines`` iterations (still running)."""
    hist = out / 'history.jsonl'
    p = subprocess.Popen(_cli('evolve', '--out', str(out), *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 600
    while _lines(hist) < lines and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert p.poll() is None and _lines(hist) >= lines
    return p


def _assert_interrupted(p, out, status):
    """The signalled ``evolve`` ended with ``status``, one line that says how to resume, and run.json says so."""
    _, err = p.communicate(timeout=300)
    assert p.returncode == status, err[-2000:]
    line = [l for l in err.splitlines() if l.startswith('interrupted at iteration')]
    assert line and line[0].endswith(f'resume with `autospace-nni evolve --resume {out}`'), err[-2000:]
    assert json.loads((out / 'run.json').read_text())['status'] == 'interrupted'


@pytest.mark.slow
def test_one_writer_per_run_folder_and_ctrl_c_exits_130_then_resumes(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    args = [*ARGS, '--iterations', '8', '--batch-size', '8']     # long enough to be caught running
    r = subprocess.run(_cli('evolve', '--out', str(a), *args), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    hist = b / 'history.jsonl'
    p = _evolve_until(b, args, 2)
    # the holder is paused (SIGSTOP keeps its lock) so that it cannot finish, on a loaded machine, before the three
    # refusals below have started their interpreters
    p.send_signal(signal.SIGSTOP)
    # a second writer on the folder, three ways: refused in one line that names the holder
    for second in (['--resume', str(b)], ['--out', str(b), '--overwrite', *args], ['--out', str(b), *args]):
        r = subprocess.run(_cli('evolve', *second, '--no-progress'), capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, (second, r.stderr[-2000:])
        assert len(r.stderr.strip().splitlines()) == 1
        assert f'in use by process {p.pid}' in r.stderr or 'already holds a run' in r.stderr, r.stderr
    assert p.poll() is None and (b / 'checkpoints' / 'last.ckpt').exists()   # untouched, still running
    p.send_signal(signal.SIGCONT)
    p.send_signal(signal.SIGINT)
    _assert_interrupted(p, b, 130)
    # the lock went with the process: the resume is not blocked, and it ends where the straight run did
    r = subprocess.run(_cli('evolve', '--resume', str(b), '--no-progress'), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _groups(a) == _groups(b)
    assert [json.loads(l)['iteration'] for l in hist.read_text().splitlines()] == list(range(8))


@pytest.mark.slow
def test_sigterm_stops_evolve_like_ctrl_c_with_status_143_and_it_resumes(tmp_path):
    out = tmp_path / 'run'
    hist = out / 'history.jsonl'
    p = _evolve_until(out, ARGS, 1)
    p.send_signal(signal.SIGTERM)   # what kill, timeout and job schedulers send: before, it ended Python at once
    _assert_interrupted(p, out, 143)
    r = subprocess.run(_cli('evolve', '--resume', str(out), '--no-progress'), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [json.loads(l)['iteration'] for l in hist.read_text().splitlines()] == list(range(5))


SWEEP = ['--iterations', '4', '--population', '8', '--sample-k', '2', '--warmup', '1', '--seed', '3',
         '--patience', '0', '--no-progress']


@pytest.fixture(scope='module')
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('sweep') / 'straight'
    r = subprocess.run(_cli('evolve', '--out', str(out), *SWEEP), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _writes(out, state):
    """Counts checkpoint writes (each changes last.ckpt's mtime) as they are seen."""
    ck = out / 'checkpoints' / 'last.ckpt'
    m = ck.stat().st_mtime_ns if ck.exists() else None
    if m is not None and m != state.get('m'):
        state['m'], state['n'] = m, state.get('n', 0) + 1
    return state.get('n', 0)


def _after_first_write(seconds):
    def ready(out, state):
        if 'first' not in state and _writes(out, state):
            state['first'] = time.time()
        return 'first' in state and time.time() - state['first'] >= seconds
    return ready


#: where the kill lands: as run.json appears (before any checkpoint), right after the n-th checkpoint write
#: (the first is the iteration-0 boundary, written when training starts; the last is the final one), and at
#: fixed delays inside the first iterations (warm-up included)
KILL_POINTS = {
    'run.json written': lambda out, st: (out / 'run.json').exists(),
    **{f'checkpoint write {n}': (lambda n: lambda out, st: _writes(out, st) >= n)(n) for n in (1, 2, 3, 5)},
    **{f'{s} s after the first write': _after_first_write(s) for s in (0.3, 1.0, 2.5)},
}


@pytest.mark.slow
@pytest.mark.parametrize('point', list(KILL_POINTS))
def test_sigkill_anywhere_resumes_to_the_straight_run(straight_run, tmp_path, point):
    out = tmp_path / 'killed'
    p = subprocess.Popen(_cli('evolve', '--out', str(out), *SWEEP), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state, deadline = {}, time.time() + 600
    while p.poll() is None and not KILL_POINTS[point](out, state) and time.time() < deadline:
        time.sleep(0.01)
    assert p.poll() is None, 'the run ended before the kill point'
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run(_cli('evolve', '--resume', str(out), '--no-progress'), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _groups(out) == _groups(straight_run)
    assert [json.loads(l)['iteration'] for l in (out / 'history.jsonl').read_text().splitlines()] == [0, 1, 2, 3]
