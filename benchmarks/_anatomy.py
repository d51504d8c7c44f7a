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
Q_MAX = 0.1          # the false-discovery rate below which cell_effects reports a choice


def kind(cell) -> str:
    """'multi' for a cell (a :class:`Cell` or its text) with more than one edge, 'mbconv' for one depthwise-conv
    edge, 'other' for any other single edge."""
    cell = Cell.parse(cell) if isinstance(cell, str) else cell
    if len(cell.edges) > 1:
        return 'multi'
    return 'mbconv' if 'dw' in cell.edges[0][2] else 'other'


def is_multi_edge(cell) -> bool:
    return kind(cell) == 'multi'


def skipped(sample: dict) -> int:
    """How many blocks a network (block -> cell text or 'zero') skips."""
    return list(sample.values()).count(ZERO)


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
            'skipped': float(np.mean([skipped(r['sample']) for r in rows])) if rows else 0.0,
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
    scored = [c for c in truth if all(c in e for e in estimates)]
    score = {c: float(np.mean([e[c] for e in estimates])) for c in scored}
    for k in ('mbconv', 'multi'):
        cells = [c for c in scored if kind(c) == k]
        out[k] = {'n': len(cells),
                  'truth': float(np.mean([truth[c] for c in cells])) if cells else float('nan'),
                  'score': float(np.mean([score[c] for c in cells])) if cells else float('nan')}
    # does the score rank the cells of one family as training alone does? (single: every one-edge cell)
    single = [c for c in scored if kind(c) != 'multi']
    out['single'] = {'n': len(single), 'tau': rank_agreement([truth[c] for c in single], [score[c] for c in single])}
    multi = [c for c in scored if kind(c) == 'multi']
    out['multi']['tau'] = rank_agreement([truth[c] for c in multi], [score[c] for c in multi])
    return out


def rank_agreement(truth, score) -> dict:
    """Kendall's τ between ground truth and scores with its two-sided p-value (scipy.stats); NaN with fewer than
    3 cells or no spread."""
    from scipy.stats import kendalltau
    if len(truth) < 3 or len(set(truth)) < 2 or len(set(score)) < 2:
        return {'tau': float('nan'), 'p': float('nan')}
    t = kendalltau(truth, score)
    return {'tau': float(t.statistic), 'p': float(t.pvalue)}


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
        if 'single' in bias and 'tau' in m:
            one, many = bias['single'], m['tau']
            lines[-1] += (f' Within one family its ranking agrees with training alone for the single-edge cells '
                          f'({one["n"]}: Kendall τ {one["tau"]["tau"]:+.2f}, p {one["tau"]["p"]:.3f}) '
                          f'{"better than" if one["tau"]["tau"] > many["tau"] else "no better than"} for the '
                          f'multi-edge ones ({m["n"]}: τ {many["tau"]:+.2f}, p {many["p"]:.3f}): the redesign '
                          '(`learned-1edge`) evolves single-edge cells only.')
    return lines


def _rho(x, err) -> dict:
    from scipy.stats import spearmanr
    if len(x) < 3 or len(set(x)) < 2 or len(set(err)) < 2:
        return {'n': len(x), 'rho': float('nan'), 'p': float('nan')}
    r = spearmanr(x, err)
    return {'n': len(x), 'rho': float(r.statistic), 'p': float(r.pvalue)}


def multi_edge_vs_error(samples) -> dict:
    """Across networks of one space (EDF samples: dicts with a ``sample`` and an ``error``): Spearman's ρ between
    the share of a network's kept blocks whose cell is multi-edge and its error, with its p-value (scipy.stats).
    ρ > 0: the more multi-edge cells a network holds, the worse it does."""
    return _rho([winner_makeup([{'sample': s['sample'], 'params': 0}])['multi_edge'] for s in samples],
                [s['error'] for s in samples])


def other_vs_error(samples) -> dict:
    """As :func:`multi_edge_vs_error`, for the share of a network's kept blocks whose cell is a single edge other
    than a depthwise convolution (a pool, an identity, a 1x1 convolution: :func:`kind` 'other')."""
    def share(sample):
        kept = [c for c in sample.values() if c != ZERO]
        return float(np.mean([kind(c) == 'other' for c in kept])) if kept else 0.0
    return _rho([share(s['sample']) for s in samples], [s['error'] for s in samples])


def skips_vs_error(samples) -> dict:
    """As :func:`multi_edge_vs_error`, for the number of blocks a network skips. ρ < 0: at matched MAdds, networks
    that skip more blocks (and so spend the budget on fewer, wider ones) do better."""
    return _rho([skipped(s['sample']) for s in samples], [s['error'] for s in samples])


def cell_fitness(space) -> dict:
    """A space's fitness of each choice at each block: block label -> {choice name: fitness} (for a learned space,
    the evolution's score of the cell in that block's group, as its document stores it)."""
    return {spec.label: {c.choice_name: c.fitness for c in space.groups[spec.group]} for spec in space.block_specs()}


def fitness_vs_error(samples, space) -> dict:
    """As :func:`multi_edge_vs_error`, for the mean fitness of a network's kept cells in ``space`` (the space its
    samples were drawn from). ρ < 0: networks of cells the evolution scored higher train to a lower error, which
    is what the fitness is for; ρ near 0: across networks of the space the scores do not tell better from worse.
    NaN for the manual space (no spread: its cells carry no score)."""
    fit = cell_fitness(space)
    means = [float(np.mean([fit[b][c] for b, c in s['sample'].items() if c != ZERO])) for s in samples]
    return _rho(means, [s['error'] for s in samples])


def cell_effects(samples, *, min_n: int = 3, q_max: float = Q_MAX) -> dict:
    """Which single choices (a cell, or 'zero', at one block) go with a higher or lower error across networks of one
    space. Every choice held by at least ``min_n`` networks and missed by at least ``min_n`` is tested: a two-sided
    Mann-Whitney U test of the errors of the networks with it against those without (scipy.stats), and the
    p-values of all tests are corrected together for the false discovery rate (Benjamini-Hochberg,
    ``scipy.stats.false_discovery_control``). Returns the number of tests and the effects with q < ``q_max``,
    smallest q first: block, cell, n (networks with it), delta (mean error with − without), p, q."""
    from scipy.stats import false_discovery_control, mannwhitneyu
    err = np.array([s['error'] for s in samples], dtype=float)
    tests = []
    for block in (samples[0]['sample'] if samples else {}):
        picks = np.array([s['sample'][block] for s in samples])
        for cell in sorted(set(picks)):
            has = picks == cell
            if min_n <= has.sum() <= len(samples) - min_n:
                p = float(mannwhitneyu(err[has], err[~has], alternative='two-sided').pvalue)
                tests.append({'block': block, 'cell': str(cell), 'n': int(has.sum()),
                              'delta': float(err[has].mean() - err[~has].mean()), 'p': p})
    if tests:
        for t, q in zip(tests, false_discovery_control([t['p'] for t in tests])):
            t['q'] = float(q)
    return {'tests': len(tests), 'effects': sorted((t for t in tests if t['q'] < q_max), key=lambda t: t['q'])}


def edf_why_lines(samples: dict, spaces: dict = None) -> list:
    """The report's paragraph on what, within each space's EDF (``samples``: space name -> EDF samples), goes
    with a network's error: its share of multi-edge and of non-depthwise single-edge blocks, the blocks it skips,
    single choices (:func:`cell_effects`) and, for a space of ``spaces`` (name -> space) whose cells carry scores,
    its cells' mean fitness (:func:`fitness_vs_error`)."""
    parts = []
    for name, rows in samples.items():
        f = fitness_vs_error(rows, spaces[name]) if spaces and spaces.get(name) is not None else None
        fit = (f', with its cells\' mean fitness (the evolution\'s scores) {f["rho"]:+.2f} (p {f["p"]:.3f})'
               if f is not None and np.isfinite(f['rho']) else '')
        m, k, e = multi_edge_vs_error(rows), skips_vs_error(rows), cell_effects(rows)
        o = other_vs_error(rows)
        found = '; '.join(f'{"zero (skipped)" if t["cell"] == ZERO else "`" + t["cell"] + "`"} at {t["block"]} '
                          f'({t["n"]} networks): {100 * t["delta"]:+.2f} points of error, p {t["p"]:.4f}, '
                          f'q {t["q"]:.3f}' for t in e['effects'])
        skips = np.mean([skipped(r['sample']) for r in rows])
        multi = (f'{m["rho"]:+.2f} (p {m["p"]:.3f})' if np.isfinite(m['rho']) else 'none (no spread in the share)')
        skips_rho = (f'{k["rho"]:+.2f} (p {k["p"]:.3f})' if np.isfinite(k['rho']) else 'none (no spread in it)')
        other = (f'{o["rho"]:+.2f} (p {o["p"]:.3f})' if np.isfinite(o['rho']) else 'none (no spread in it)')
        parts.append(f'**{name}** ({m["n"]} networks, {skips:.1f} blocks skipped on average): Spearman ρ of error '
                     f'with the share of multi-edge blocks {multi}, with the share of non-depthwise single-edge '
                     f'blocks {other}, with the number of blocks skipped {skips_rho}{fit}; of {e["tests"]} single '
                     'choices tested (Mann-Whitney U, Benjamini-Hochberg), '
                     + (f'{len(e["effects"])} with q < {Q_MAX}: {found}' if e['effects'] else f'none with q < {Q_MAX}'))
    return ['\nWhat goes with a network\'s error within each EDF (ρ > 0: more of it, more error): ' +
            '. '.join(parts) + '.'] if parts else []


def evolution_reliability(work, folder: str):
    """:func:`score_reliability` of the evolution cached in ``work``/``folder`` (its ``history.jsonl``); None
    without one."""
    f = Path(work) / folder / 'history.jsonl'
    if not f.exists():
        return None
    return score_reliability([json.loads(line) for line in f.read_text().splitlines() if line.strip()])


def score_reliability(history) -> dict:
    """How much of the spread of the estimator's scores within one evolution (``history``: its records, with
    ``scores/<group>`` = {cell: r}) tells cells apart: the one-way random-effects intraclass correlation ICC(1)
    over the cells scored at least twice (the reference, always exactly 1.0, left out), by its ANOVA estimator.
    Near 0, two scores of the same cell agree no better than scores of two different cells, and a top-M by
    fitness is mostly noise; the Spearman-Brown formula then says how many scores per cell a reliable mean needs."""
    scores = {}
    for rec in history:
        for key, group_scores in rec.items():
            if key.startswith('scores/'):
                for cell, r in group_scores.items():
                    scores.setdefault((key, cell), []).append(float(r))
    groups = [np.asarray(v) for v in scores.values() if len(v) >= 2 and not np.all(np.asarray(v) == 1.0)]
    out = {'cells': len(groups), 'scores_per_cell': float(np.mean([len(g) for g in groups])) if groups else 0.0}
    return {**out, **icc1(groups)}


def icc1(groups) -> dict:
    """The one-way random-effects intraclass correlation ICC(1) by its ANOVA estimator, over ``groups`` (each the
    repeated measurements of one subject, at least two each, as many as there are): the share of one measurement's
    variance that tells subjects apart. With it the sd of a measurement around its subject's mean (``sd_within``)
    and of the subjects' own means (``sd_between``); all NaN for fewer than two groups."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    out = {'icc': float('nan'), 'sd_within': float('nan'), 'sd_between': float('nan')}
    if len(groups) < 2:
        return out
    n = np.array([len(g) for g in groups], dtype=float)
    total, k = n.sum(), len(groups)
    grand = np.concatenate(groups).mean()
    msb = float(np.sum(n * (np.array([g.mean() for g in groups]) - grand) ** 2) / (k - 1))
    msw = float(sum(((g - g.mean()) ** 2).sum() for g in groups) / (total - k))
    n0 = (total - (n ** 2).sum() / total) / (k - 1)
    out['icc'] = float((msb - msw) / (msb + (n0 - 1) * msw)) if msb + (n0 - 1) * msw > 0 else float('nan')
    out['sd_within'] = float(np.sqrt(msw))
    out['sd_between'] = float(np.sqrt(max(0.0, (msb - msw) / n0)))
    return out


def training_retest(first, second, space=None) -> dict:
    """How much of an EDF network's error is its architecture rather than its training run. ``first`` and
    ``second`` are EDF samples (dicts with a ``sample`` and an ``error``) of the same architectures trained with
    different seeds; they are paired by architecture. Returns the pairs' number ``n``, :func:`icc1` of the two
    errors (the retest reliability of one run's error, with the sd of the training noise and of the networks' own
    errors), Spearman's ρ between the runs (``runs``), ``ceiling`` = √ICC (how far any score, however exact, can
    correlate with one run's error) and, for a ``space`` whose cells carry scores, :func:`fitness_vs_error` against
    the mean of the two runs (``fitness``, a less noisy error than either run's)."""
    key = lambda s: json.dumps(s['sample'], sort_keys=True)   # noqa: E731
    again = {key(s): s['error'] for s in second}
    pairs = [(s, again[key(s)]) for s in first if key(s) in again]
    out = {'n': len(pairs), **icc1([[s['error'], e] for s, e in pairs]),
           'runs': _rho([s['error'] for s, _ in pairs], [e for _, e in pairs])}
    out['ceiling'] = float(np.sqrt(out['icc'])) if out['icc'] > 0 else 0.0 if np.isfinite(out['icc']) else float('nan')
    if space is not None and pairs:
        out['fitness'] = fitness_vs_error([{**s, 'error': (s['error'] + e) / 2} for s, e in pairs], space)
    return out


def retest_lines(S, work, spaces=None):
    """How much of an EDF network's error is its architecture: the networks of ``edf_<name>_retest`` (the first ones
    of that EDF, trained again with other seeds) against their first run
    (:func:`training_retest`)."""
    from autospace_nni.design_space import load_samples
    parts = []
    for name in S.get('retest_spaces', ()):
        d, again = Path(work) / f'edf_{name}', Path(work) / f'edf_{name}_retest'
        if not (again / 'design_space.jsonl').exists() or not (d / 'design_space.jsonl').exists():
            continue
        space = (spaces or {}).get(name)
        first = load_samples(d)
        r = training_retest(first, load_samples(again), space)
        if not np.isfinite(r['icc']):
            continue
        f, runs = r.get('fitness'), r['runs']
        runs = f'{runs["rho"]:+.2f}, p {runs["p"]:.3f}' if np.isfinite(runs['rho']) else 'none (too few networks)'
        parts.append(f'`{name}`, its first {r["n"]} networks: ICC {r["icc"]:.2f} (sd of a run\'s training noise '
                     f'{r["sd_within"]:.4f}, of the networks\' own errors {r["sd_between"]:.4f}; Spearman ρ between '
                     f'the runs {runs}), so no score can correlate with one run\'s error beyond √ICC = '
                     f'{r["ceiling"]:.2f}'
                     + (f'; the cells\' mean fitness against the two runs\' mean error: ρ {f["rho"]:+.2f} '
                        f'(p {f["p"]:.3f})' if f is not None and np.isfinite(f['rho']) else ''))
        whole = fitness_vs_error(first, space) if space is not None else None
        if whole is not None and np.isfinite(whole['rho']) and whole['n'] > 3 and r['ceiling'] > 0:
            lo, hi = spearman_ci(whole['rho'], whole['n'])
            parts[-1] += (f'; over the whole EDF ({whole["n"]} networks, one run each) that ρ is {whole["rho"]:+.2f}, '
                          f'90% CI [{lo:+.2f}, {hi:+.2f}], which, divided by the ceiling, leaves the fitness\'s '
                          f'correlation with a network\'s own error (its error without the training noise) within '
                          f'[{max(-1.0, lo / r["ceiling"]):+.2f}, {min(1.0, hi / r["ceiling"]):+.2f}]')
    return (['\nTraining noise in the EDFs (networks trained again, same architectures and recipe, other seeds; ICC: '
             'the share of one run\'s error variance that is the architecture\'s): ' + '; '.join(parts) + '.']
            if parts else [])


def spearman_ci(rho: float, n: int, level: float = 0.90) -> tuple:
    """Confidence interval of a Spearman ρ over ``n`` pairs: Fisher's z with Bonett and Wright's standard error
    √(1.06 / (n − 3))."""
    from scipy.stats import norm
    z, se = np.arctanh(np.clip(rho, -0.999999, 0.999999)), np.sqrt(1.06 / (n - 3))
    q = norm.ppf(0.5 + level / 2)
    return float(np.tanh(z - q * se)), float(np.tanh(z + q * se))


def scores_needed(icc: float, target: float = 0.8) -> float:
    """Spearman-Brown: scores per cell whose mean reaches reliability ``target`` at single-score reliability ``icc``
    (inf when ``icc`` <= 0)."""
    if not icc > 0:
        return float('inf')
    return target * (1 - icc) / (icc * (1 - target))


def budget_contrast(large, small, *, n: int = 300, seed: int = 0) -> dict:
    """How far the space learned at the smaller budget (``small``) moved from the one learned at the larger
    (``large``): the cells the two share (same group, same text) out of ``large``'s, how many of those are not the
    reference cell, and for each space the MAdds of ``n`` networks drawn uniformly from it (a random choice at every
    block; mean, 10th and 90th percentiles) and of its priciest network (:func:`autospace_nni.search.cost_range`)."""
    from autospace_nni.budget import AnalyticCostProfiler
    from autospace_nni.search import cost_range
    shared = [c for g, cells in large.groups.items() for c in cells
              if c.cell in {s.cell for s in small.groups.get(g, [])}]
    out = {'shared': len(shared), 'shared_evolved': sum(not c.reference for c in shared),
           'cells': sum(len(cells) for cells in large.groups.values())}
    for name, space in (('large', large), ('small', small)):
        profiler, rs = AnalyticCostProfiler(space.skeleton), np.random.RandomState(seed)
        madds = [profiler.profile({spec.label: rs.choice(space.candidates(spec)) for spec in space.block_specs()})
                 for _ in range(n)]
        out[name] = {'mean': float(np.mean(madds)), 'p10': float(np.percentile(madds, 10)),
                     'p90': float(np.percentile(madds, 90)), 'max': float(cost_range(space)[1])}
    return out
