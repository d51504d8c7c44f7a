"""Design-space comparison in RegNet's manner (Radosavovic et al., 2020): sample architectures from a space at
matched MAdds, train each briefly with one recipe, and compare the spaces by their error EDFs.

``autospace-nni sample-space SPACE --n 20 --epochs 2 --madds-range LO HI --out DIR`` writes
``DIR/design_space.jsonl`` (one trained architecture per line, appended as each finishes, so a killed run
resumes where it stopped); ``autospace-nni compare DIR_A DIR_B ...`` draws their EDFs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import AutoSpaceError

__all__ = ['sample_architectures', 'sample_space', 'load_samples', 'plot_edfs', 'edf', 'edf_band', 'mean_error_ci']

RESULTS = 'design_space.jsonl'


def sample_architectures(space, n: int, seed: int = 0, madds_range: Optional[Tuple[float, float]] = None,
                         max_tries: int = 200_000) -> List[Dict[str, str]]:
    """``n`` distinct uniform samples of ``space`` whose MAdds fall in ``madds_range`` (rejection sampling)."""
    rs = np.random.RandomState(seed)
    specs = space.block_specs()
    out, seen = [], set()
    for _ in range(max_tries):
        sample = {s.label: space.candidates(s)[rs.randint(len(space.candidates(s)))] for s in specs}
        key = json.dumps(sample, sort_keys=True)
        if key in seen:
            continue
        madds = space.cost(sample).madds
        if madds_range is None or madds_range[0] <= madds <= madds_range[1]:
            seen.add(key)
            out.append(sample)
            if len(out) == n:
                return out
    raise AutoSpaceError(f'found only {len(out)} of {n} distinct architectures with MAdds in {madds_range}; '
                         f'widen --madds-range')


def load_samples(folder) -> List[dict]:
    path = Path(folder) / RESULTS
    if not path.exists():
        raise AutoSpaceError(f'{folder} holds no {RESULTS}; produce it with `autospace-nni sample-space`')
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def sample_space(space, data, out, *, n: int = 20, epochs: int = 2, seed: int = 0, batch_size: int = 64,
                 lr: float = 0.05, madds_range=None, name: Optional[str] = None, progress: bool = True,
                 device: str = 'cpu', train_seed: Optional[int] = None) -> List[dict]:
    """Train ``n`` sampled architectures briefly; resumable (finished samples in ``out`` are kept).

    ``seed`` draws the architectures (a fixed sequence: a smaller ``n`` gives a prefix of a larger one) and, unless
    ``train_seed`` is given, also seeds their training (``seed + i`` for the i-th); ``train_seed`` trains the same
    architectures with other seeds (``train_seed + i``), to see how much of an error is the training run's."""
    from .retrain import retrain
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = sample_architectures(space, n, seed, madds_range)
    done = {json.dumps(r['sample'], sort_keys=True): r for r in (load_samples(out) if (out / RESULTS).exists() else [])}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc=f'sample {name or "space"}', unit='arch', dynamic_ncols=True, initial=len(done))
    records = []
    try:
        for i, sample in enumerate(samples):
            key = json.dumps(sample, sort_keys=True)
            if key in done:
                records.append(done[key])
                continue
            t0, run_seed = time.time(), (seed if train_seed is None else train_seed) + i
            m = retrain(space.architecture(sample), data, epochs=epochs, batch_size=batch_size, lr=lr, seed=run_seed,
                        device=device)
            rec = {'index': i, 'space': name, 'sample': sample, 'madds': m['madds'], 'params': m['params'],
                   'val_acc': m['val_acc'], 'test_acc': m['test_acc'], 'error': 1.0 - m['test_acc'], 'epochs': epochs,
                   'train_seed': run_seed, 'seconds': round(time.time() - t0, 2)}
            with open(out / RESULTS, 'a') as f:
                f.write(json.dumps(rec) + '\n')
            records.append(rec)
            if bar is not None:
                bar.set_postfix(err=f'{rec["error"]:.3f}')
                bar.update(1)
    finally:   # also on Ctrl-C, so the next line starts clean
        if bar is not None:
            bar.close()
    return records


def edf(errors: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Empirical distribution: x = sorted errors, y = fraction of architectures with error <= x."""
    x = np.sort(np.asarray(errors, dtype=float))
    return x, np.arange(1, len(x) + 1) / len(x)


def edf_band(errors: Sequence[float], grid: np.ndarray, *, boot: int = 1000, level: float = 0.90,
             seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Pointwise bootstrap band of the EDF on ``grid``: architectures resampled with replacement."""
    e = np.asarray(errors, dtype=float)
    rs = np.random.RandomState(seed)
    curves = np.array([(np.sort(e[rs.randint(0, len(e), len(e))])[:, None] <= grid[None, :]).mean(0)
                       for _ in range(boot)])
    lo, hi = np.percentile(curves, [50 * (1 - level), 100 - 50 * (1 - level)], axis=0)
    return lo, hi


def mean_error_ci(errors: Sequence[float], *, boot: int = 2000, level: float = 0.90, seed: int = 0) -> List[float]:
    e = np.asarray(errors, dtype=float)
    rs = np.random.RandomState(seed)
    means = [e[rs.randint(0, len(e), len(e))].mean() for _ in range(boot)]
    return [float(v) for v in np.percentile(means, [50 * (1 - level), 100 - 50 * (1 - level)])]


def plot_edfs(folders: Sequence, path, *, bands: bool = False, boot: int = 1000) -> List[dict]:
    """One EDF curve per folder (with ``bands``, its 90% bootstrap band); returns a summary row per folder
    (n, mean/min error with the mean's 90% interval, MAdds range)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rows, loaded = [], []
    for folder in folders:
        recs = load_samples(folder)
        if not recs:
            raise AutoSpaceError(f'{folder}/{RESULTS} is empty')
        loaded.append((folder, recs))
    every = np.concatenate([[r['error'] for r in recs] for _, recs in loaded])
    grid = np.linspace(every.min(), every.max(), 200)
    for folder, recs in loaded:
        errs = [r['error'] for r in recs]
        label = recs[0].get('space') or Path(folder).name
        x, y = edf(errs)
        line, = ax.step(x, y, where='post', label=f'{label} (n={len(errs)}, mean {np.mean(errs):.3f})')
        if bands:
            lo, hi = edf_band(errs, grid, boot=boot)
            ax.fill_between(grid, lo, hi, step='post', alpha=0.2, color=line.get_color(), linewidth=0)
        madds = [r['madds'] for r in recs]
        rows.append({'space': label, 'folder': str(folder), 'n': len(errs), 'mean_error': float(np.mean(errs)),
                     'mean_error_ci': mean_error_ci(errs), 'min_error': float(np.min(errs)),
                     'madds_min': int(min(madds)), 'madds_max': int(max(madds)),
                     'madds_mean': float(np.mean(madds))})
    ax.set_xlabel('test error')
    ax.set_ylabel('cumulative fraction of architectures')
    ax.set_title('Error EDFs (a curve further up-left is a better design space)'
                 + ('; 90% bootstrap bands' if bands else ''), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return rows
