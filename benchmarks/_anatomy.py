"""What space_quality.py's spaces and winners are made of, and whether the fitness estimator favours that make-up:
the figures behind "why" when the learned space loses.

A cell is *multi-edge* when its genome has more than one edge (a DAG of ops, as most evolved cells are), and an
*MBConv* cell when its one edge is a depthwise convolution (the kind of every candidate of the manual space); other
single-edge cells (a pool, a skip, a 1x1 conv) are neither. The estimator's view of the two kinds comes from the
fitness-quality benchmark's cache (benchmarks/fitness_quality.py), where cells of both kinds were scored by the
estimator and also trained alone for a ground truth.
"""

import json
from pathlib import Path

import numpy as np

from autospace_nni.cells.genome import Cell

ZERO = 'zero'


def kind(cell) -> str:
    """'multi' for a cell (a :class:`Cell` or its text) with more than one edge, 'mbconv' for one depthwise-conv
    edge, 'other' for any other single edge."""
    cell = Cell.parse(cell) if isinstance(cell, str) else cell
    if len(cell.edges) > 1:
        return 'multi'
    return 'mbconv' if 'dw' in cell.edges[0][2] else 'other'


def is_multi_edge(cell) -> bool:
    return kind(cell) == 'multi'


def space_makeup(space) -> dict:
    """A space's cells: how many, and the share that is multi-edge (reference cells included: they are choices)."""
    cells = [c.cell for cs in space.groups.values() for c in cs]
    return {'cells': len(cells), 'multi_edge': float(np.mean([is_multi_edge(c) for c in cells])) if cells else 0.0}


def winner_makeup(rows) -> dict:
    """Search winners (rows with a ``sample`` of block -> cell text or 'zero', and ``params``): blocks skipped, the
    share of the blocks kept whose cell is multi-edge, params; means over the winners."""
    samples = [list(r['sample'].values()) for r in rows]
    kept = [c for s in samples for c in s if c != ZERO]
    return {'winners': len(rows), 'blocks': len(samples[0]) if samples else 0,
            'skipped': float(np.mean([s.count(ZERO) for s in samples])) if samples else 0.0,
            'multi_edge': float(np.mean([is_multi_edge(c) for c in kept])) if kept else 0.0,
            'params': float(np.mean([r['params'] for r in rows])) if rows else 0.0}


def estimator_bias(fq_work: Path):
    """From a fitness-quality cache: for MBConv and multi-edge cells, the mean ground truth (held-out
    accuracy, trained alone) and the mean score of the default estimator (averaged over its seeds), with the
    number of cells of each kind. None when that cache has no report yet."""
    fq_work = Path(fq_work)
    if not (fq_work / 'report.json').exists() or not (fq_work / 'summary.json').exists():
        return None
    truth = json.loads((fq_work / 'report.json').read_text())['truth']
    default = json.loads((fq_work / 'summary.json').read_text())['default']
    runs = sorted((fq_work / 'estimators').glob(f'{default}_seed*/result.json'))
    if not runs:
        return None
    estimates = [json.loads(p.read_text())['estimate'] for p in runs]
    out = {'estimator': default, 'seeds': len(runs)}
    for k in ('mbconv', 'multi'):
        cells = [c for c in truth if kind(c) == k and all(c in e for e in estimates)]
        out[k] = {'n': len(cells),
                  'truth': float(np.mean([truth[c] for c in cells])) if cells else float('nan'),
                  'score': float(np.mean([np.mean([e[c] for e in estimates]) for c in cells])) if cells
                  else float('nan')}
    return out


def why_lines(spaces: dict, winners: dict, bias) -> list:
    """The report's paragraph on what the spaces and their winners are made of (``winners``: space name -> rows),
    and on the estimator's view of multi-edge cells (``bias``: :func:`estimator_bias`, or None)."""
    parts = []
    for name, rows in winners.items():
        if rows:
            w, m = winner_makeup(rows), space_makeup(spaces[name])
            parts.append(f'{name}: {m["multi_edge"]:.0%} of its {m["cells"]} candidate cells (references included) '
                         f'are multi-edge; its winners skip {w["skipped"]:.1f} of {w["blocks"]} blocks, '
                         f'{w["multi_edge"]:.0%} of the blocks they keep use a multi-edge cell, '
                         f'{w["params"] / 1e3:.0f} k params ({w["winners"]} winners)')
    lines = (['\nWhat the spaces and their P1 winners are made of (winners: means): ' + '; '.join(parts) + '.']
             if parts else [])
    if bias and bias['mbconv']['n'] and bias['multi']['n']:
        s, m = bias['mbconv'], bias['multi']
        lines.append(f'\nThe estimator on the two kinds of cell (fitness-quality benchmark, each cell trained alone '
                     f'for its ground truth): MBConv cells ({s["n"]}) score {s["score"]:.3f} and reach '
                     f'{s["truth"]:.3f} held-out accuracy, multi-edge cells ({m["n"]}) score {m["score"]:.3f} and '
                     f'reach {m["truth"]:.3f}: `{bias["estimator"]}` rates multi-edge cells '
                     f'{"as high or higher" if m["score"] >= s["score"] else "lower"}, and they train '
                     f'{100 * abs(s["truth"] - m["truth"]):.1f} points '
                     f'{"worse" if m["truth"] < s["truth"] else "better"}.')
    return lines


def multi_edge_vs_error(samples) -> dict:
    """Across networks of one space (EDF samples: dicts with a ``sample`` and an ``error``): Spearman's ρ between
    the share of a network's kept blocks whose cell is multi-edge and its error, with its p-value (scipy.stats).
    ρ > 0: the more multi-edge cells a network holds, the worse it does."""
    from scipy.stats import spearmanr
    share = [winner_makeup([{'sample': s['sample'], 'params': 0}])['multi_edge'] for s in samples]
    err = [s['error'] for s in samples]
    if len(samples) < 3 or len(set(share)) < 2 or len(set(err)) < 2:
        return {'n': len(samples), 'rho': float('nan'), 'p': float('nan')}
    r = spearmanr(share, err)
    return {'n': len(samples), 'rho': float(r.statistic), 'p': float(r.pvalue)}
