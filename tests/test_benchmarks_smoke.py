"""The benchmark scripts at smoke scale, so they cannot rot. Their numbers are not checked:
timings never belong in a test; the real runs write docs/benchmarks.md."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_overhead_smoke():
    out = _run('benchmarks/overhead.py', '--skeleton', 'tiny-8', '--steps', '4', '--cells', '12', '--batch', '16',
               '--no-write')
    assert '| NNI DARTS |' in out and '| AutoSpace (path_mode sum) |' in out   # fitness='alpha-sum'
    assert '| forward-hook count of the built cell (MAdds and params) | 12/12 |' in out   # exact agreement
    assert '12/12 |' in out.split('FlopsParamsProfiler')[1].splitlines()[0]


def test_space_quality_smoke(tmp_path):
    out = _run('benchmarks/space_quality.py', '--scale', 'smoke', '--no-write', '--work', str(tmp_path), '--port',
               '8779')
    for needle in ('| darts | learned |', '| darts | manual |', '| random | learned |', '| random | manual |',
                   '| learned | 3 |', '| manual | 3 |', 'Convergence', '| small | ', '| large | ',
                   'each space wins at its own budget', '| learned-arc-lr-0.1 | 3 |', 'at a larger α step'):
        assert needle in out, out[-2000:]
    assert (tmp_path / 'edf.png').exists() and (tmp_path / 'evolve_ref-none' / 'learned_space.json').exists()
    # the two budget-specialised spaces really were learned under their budgets
    import json
    small, large = (json.loads((tmp_path / f'evolve_budget-{b}' / 'learned_space.json').read_text())
                    for b in ('small', 'large'))
    assert small['budget_madds'] < large['budget_madds']


def test_overhead_imagenet_part_smoke():
    # the GPU benchmark's code path at a size a CPU runs in a minute (32 px at batch 2 is too degenerate:
    # 1x1 maps, BN over two values, and the fault detector rightly stops on the NaN)
    out = _run('benchmarks/overhead.py', '--part', 'imagenet', '--resolution', '64', '--batch', '4', '--steps', '6',
               '--no-write')
    assert '| NNI ProxylessNAS hub + DARTS |' in out and '| AutoSpace proxylessnas-mobile |' in out
    assert 'median of 3 steps' in out


def test_fitness_quality_smoke(tmp_path):
    import json
    out = _run('benchmarks/fitness_quality.py', '--scale', 'smoke', '--no-write', '--work', str(tmp_path))
    for needle in ('| `alpha-sum` |', '| `alpha-gates` |', '| `paired-eval` (default) |', '| baseline: MAdds |',
                   '| baseline: SynFlow |', 'Noise ceiling', 'τ ≥ 0.5 for the default'):
        assert needle in out, out[-2000:]
    summary = json.loads((tmp_path / 'summary.json').read_text())
    # exactly the documented shape
    assert set(summary) == {'estimators', 'baselines', 'noise_ceiling_tau', 'default', 'n_cells'}
    assert set(summary['estimators']) == {'alpha-sum', 'alpha-gates', 'paired-eval'}
    for row in summary['estimators'].values():
        assert set(row) == {'tau', 'tau_ci', 'seed_tau', 'top3'} and -1 <= row['tau'] <= 1
        assert row['tau_ci'][0] <= row['tau_ci'][1]
    assert set(summary['baselines']) == {'MAdds', 'params', 'SynFlow'} and summary['n_cells'] >= 16
    # cached: a second invocation trains nothing and reports the same figures
    again = _run('benchmarks/fitness_quality.py', '--scale', 'smoke', '--no-write', '--work', str(tmp_path))
    assert json.loads((tmp_path / 'summary.json').read_text()) == summary and '[estimator]' in again
