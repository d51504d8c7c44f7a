"""Lightning DDP: 2 CPU processes with the gloo backend. The population update is computed on
rank 0 and broadcast, so both ranks end with identical populations; only rank 0 writes the run folder."""

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow      # long: run by .ci/run after the default suite (-m slow)

ARGS = ['--iterations', '3', '--population', '8', '--sample-k', '2', '--warmup', '1', '--seed', '3',
        '--patience', '0', '--no-progress']


def _evolve(out, *extra, env=None):
    r = subprocess.run([sys.executable, '-m', 'autospace_nni.cli', 'evolve', '--out', str(out), *ARGS, *extra],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_two_gloo_processes_hold_identical_populations(tmp_path):
    dump = tmp_path / 'dump'
    dump.mkdir()
    env = dict(os.environ, AUTOSPACE_DDP_DUMP=str(dump), OMP_NUM_THREADS='1')
    _evolve(tmp_path / 'ddp', '--devices', '2', env=env)
    rank0, rank1 = (json.loads((dump / f'rank{r}.json').read_text()) for r in (0, 1))
    assert rank0['groups'] == rank1['groups']                 # cells and fitness, bit for bit
    w0, w1 = (torch.load(dump / f'rank{r}.weights.pt') for r in (0, 1))
    assert w0.keys() == w1.keys()
    # DDP averaged the weight gradients, so the weights agree; BatchNorm running statistics are per rank
    # (no SyncBatchNorm) and α is each rank's own (only rank 0's scores are used)
    params = [k for k in w0 if 'alpha' not in k and not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))]
    assert len(params) > 100 and all(torch.equal(w0[k], w1[k]) for k in params)
    saved = json.loads((tmp_path / 'ddp' / 'learned_space.json').read_text())
    assert saved['groups'] == rank0['groups']
    hist = [json.loads(l) for l in (tmp_path / 'ddp' / 'history.jsonl').read_text().splitlines()]
    assert [h['iteration'] for h in hist] == [0, 1, 2]       # one writer: no record twice
    assert json.loads((tmp_path / 'ddp' / 'run.json').read_text())['status'] == 'done'

    # Against one process: the evolution's RNG is the same, so the first cells drawn are the same; after
    # that DDP's batch split (each rank trains on half of each epoch, gradients averaged) changes α and
    # therefore the fitness, so later iterations may differ (docs/method-notes.md).
    _evolve(tmp_path / 'single', env=dict(os.environ, OMP_NUM_THREADS='1'))
    single = [json.loads(l) for l in (tmp_path / 'single' / 'history.jsonl').read_text().splitlines()]
    assert single[0]['sampled'] == hist[0]['sampled']
    assert set(json.loads((tmp_path / 'single' / 'learned_space.json').read_text())['groups']) == set(saved['groups'])
