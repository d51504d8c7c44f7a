"""The report of space_quality.py, from its rows (one per retrained search winner) and cached units: the P1 table and
verdict, the EDFs with bands, the two side questions (written by benchmarks/_side_report.py), the Pareto plot, goal
P2 (written by benchmarks/_p2_report.py), and the summary JSON in the shape the protocol fixes. It trains nothing,
so it is tested on rows made up with known answers.
"""

import json
from pathlib import Path

import numpy as np

from benchmarks._paired import best_case_ps, paired_test, seed_pairs
from benchmarks._p2_report import p2_curves_plot, p2_network, p2_section, rung_of, rung_text
from benchmarks._side_report import side_lines

P1_GAIN = 0.003      # goal P1's gain in mean test accuracy (a fraction: 0.3 points)
P1_ALPHA = 0.1       # goal P1's paired p
#: the spaces whose EDFs are drawn, in the order they grow; each learned one is compared with 'manual'
EDF_SPACES = ('learned', 'manual', 'learned-1edge', 'learned-eval-all')
#: the learned spaces that P1 pairs with the manual space's winners; summary.json's P1 is the first one's
P1_LEARNED = ('learned', 'learned-eval-all', 'learned-1edge')


def p1_section(S, rows, learned: str = 'learned'):
    """The P1 table, verdict and best-case line of the space ``learned`` against the manual one, and
    summary.json's ``p1`` value (its keys say 'learned' whichever learned space it is)."""
    B = S['budget']
    lines = [f'| algorithm | {learned} (mean test acc) | manual | Δ (points) | Wilcoxon p | paired t p | pairs | '
             f'{learned} MAdds | manual MAdds |', '|---|---|---|---|---|---|---|---|---|']
    algos = {}
    for strategy in S['strategies']:
        pairs = seed_pairs(rows, strategy, B, a=learned)
        if not pairs:
            lines.append(f'| {strategy} | pending | | | | | 0 | | |')
            continue
        t = paired_test([l['test_acc'] for l, _ in pairs], [m['test_acc'] for _, m in pairs])
        lm, mm = np.mean([l['madds'] for l, _ in pairs]), np.mean([m['madds'] for _, m in pairs])
        la, ma = np.mean([l['test_acc'] for l, _ in pairs]), np.mean([m['test_acc'] for _, m in pairs])
        pw, pt = (f'{p:.3f}' if np.isfinite(p) else 'n/a (too few pairs)' for p in (t['p_wilcoxon'], t['p_ttest']))
        lines.append(f'| {strategy} | {la:.4f} | {ma:.4f} | {100 * t["delta"]:+.2f} | {pw} | {pt} | {t["n"]} | '
                     f'{lm / 1e6:.2f} M | {mm / 1e6:.2f} M |')
        algos[strategy] = {'learned_mean': float(la), 'manual_mean': float(ma), 'delta': t['delta'],
                           # null, not NaN (invalid JSON), while too few pairs to test
                           'p_value': t['p_wilcoxon'] if np.isfinite(t['p_wilcoxon']) else None,
                           'learned_madds': float(lm), 'manual_madds': float(mm), 'seeds': t['n']}
    verdict, ok, complete, best, hopeless = p1_verdict(S, rows, algos, learned)
    lines.append(f'\nGoal P1 for `{learned}` (≥ +{100 * P1_GAIN:.1f} points with paired p < {P1_ALPHA}, both '
                 f'algorithms): **{verdict}** (met so far by: {", ".join(ok) or "none"}).')
    if not complete:
        lines.append(f'\nThe smallest Wilcoxon p the pending seeds still allow (each pending pair won by `{learned}`, '
                     'by more than any pair so far): ' + ', '.join(f'{a} {p:.3f}' for a, p in best.items()) +
                     (f'. For {" and ".join(hopeless)} that is at or above {P1_ALPHA}, so no remaining seed can meet '
                      'the goal; the remaining P1 seeds run last (after the EDFs, P2 and the side questions), and '
                      'only narrow the gap\'s estimate.'
                      if hopeless else '.'))
    return lines, {'algorithms': algos}


def p1_verdict(S, rows, algos, learned: str = 'learned') -> tuple:
    """Goal P1's verdict for the space ``learned`` from its per-algorithm figures ``algos`` (:func:`p1_section`'s):
    ('met' | 'NOT met' | 'undecided: pairs still pending', the algorithms that meet it, whether every seed has run,
    the best Wilcoxon p each algorithm can still reach, the algorithms for which that is at or above the goal's p)."""
    ok = [a for a, v in algos.items() if v['delta'] >= P1_GAIN and v['p_value'] is not None and v['p_value'] < P1_ALPHA]
    complete = all(algos.get(a, {}).get('seeds') == len(S['seeds']) for a in S['strategies'])
    # the best Wilcoxon p each algorithm can still reach: at or above 0.1 its pending seeds cannot meet the goal
    best = best_case_ps(rows, S, S['budget'], learned)
    hopeless = [a for a, p in best.items() if p >= P1_ALPHA]
    verdict = ('met' if len(ok) == len(S['strategies']) else 'NOT met' if complete or hopeless else
               'undecided: pairs still pending')
    return verdict, ok, complete, best, hopeless


def spaces_lines(S, spaces):
    """What each evolution learned: the cost range of every space, and the make-up of each learned one."""
    from autospace_nni.search import cost_range
    lines = ['\nMAdds of the cheapest and the priciest network in each space: ' + '; '.join(
        f'{name} {lo / 1e6:.2f}-{hi / 1e6:.2f} M' for name, (lo, hi) in
        ((n, cost_range(sp)) for n, sp in spaces.items() if sp is not None)) + '.']
    for name, tag in (('learned', 'with the reference'), ('learned-no-ref', 'without the reference'),
                      ('learned-small', f'at {S["spec_budget"] / 1e6:.3g} M MAdds'),
                      ('learned-1edge', 'single-edge cells only, with the reference'),
                      ('learned-eval-all', 'paired-eval on every held-out image, with the reference')):
        space = spaces.get(name)
        if space is None:
            continue
        cells = [c for cs in space.groups.values() for c in cs if not c.reference]
        fits = [c.fitness for c in cells]
        unit = 'as good as the average cell scored with it' if name == 'learned-no-ref' else 'as good as the reference'
        lines.append(f'\nLearned space `{name}` ({tag}): {len(cells)} cells over {len(space.groups)} groups, fitness '
                     f'{min(fits):.3f}-{max(fits):.3f} (1 = {unit}), '
                     f'{np.mean([c.cell.expand == 1 for c in cells]):.0%} with expand ratio 1, '
                     f'{space.provenance.get("iterations")} iterations.')
    return lines


def mean_error_gap(err_a, err_b, boot: int, seed: int = 0) -> tuple:
    """Mean error of ``err_a`` minus that of ``err_b`` and the 90% bootstrap interval of that difference (each
    sample resampled on its own, ``boot`` times)."""
    a, b = np.asarray(err_a, dtype=float), np.asarray(err_b, dtype=float)
    rs = np.random.RandomState(seed)
    diffs = [a[rs.randint(0, len(a), len(a))].mean() - b[rs.randint(0, len(b), len(b))].mean() for _ in range(boot)]
    lo, hi = np.percentile(diffs, [5, 95])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def edf_gap(errors: dict, name: str, boot: int, against: str = 'manual') -> tuple:
    """(n, gap, lo, hi): space ``name``'s EDF against the manual one's (or ``against``'s) at equal n (a space still
    growing is compared with the same prefix of the other EDF's fixed sequence), by :func:`mean_error_gap`."""
    k = min(len(errors[name]), len(errors[against]))
    return (k, *mean_error_gap(errors[name][:k], errors[against][:k], boot))


def edf_screened_out(S, edf_dirs, name) -> bool:
    """Whether the learned space ``name``'s EDF, complete (edf_n networks), lies right of the manual one outside the
    bands (the lower end of its mean-error gap's interval above 0): the screen that keeps a redesign out of P1 until
    the open questions have run."""
    from autospace_nni.design_space import load_samples
    if name not in edf_dirs or 'manual' not in edf_dirs:
        return False
    k, _, lo, _ = edf_gap({n: [r['error'] for r in load_samples(edf_dirs[n])] for n in (name, 'manual')}, name,
                          S['boot'])
    return k >= S['edf_n'] and lo > 0


def edf_section(S, edf_dirs, png, spaces=None):
    """The EDF table, plot (written to ``png``) and, for each learned space with an EDF, the bootstrap interval
    of its difference in mean error from the manual space, with what within each EDF goes with error (with the
    cells' fitness for the spaces of ``spaces``, name -> space)."""
    from autospace_nni.design_space import load_samples, plot_edfs
    names = [n for n in EDF_SPACES if n in edf_dirs]
    edf_rows = plot_edfs([edf_dirs[n] for n in names], png, bands=True, boot=S['boot'] // 2)
    lines = ['', '| space | EDF n | mean error (90% CI) | best error | MAdds range |', '|---|---|---|---|---|']
    lines += [f'| {r["space"]} | {r["n"]} | {r["mean_error"]:.4f} [{r["mean_error_ci"][0]:.4f}, '
              f'{r["mean_error_ci"][1]:.4f}] | {r["min_error"]:.4f} | {r["madds_min"] / 1e6:.2f}-'
              f'{r["madds_max"] / 1e6:.2f} M |' for r in edf_rows]
    edf_samples = {n: load_samples(edf_dirs[n]) for n in names}
    errors = {n: [r['error'] for r in rows] for n, rows in edf_samples.items()}
    for n in names:
        if n == 'manual' or 'manual' not in errors:
            continue
        k, gap, lo, hi = edf_gap(errors, n, S['boot'])
        lines.append(f'\nMean error {n} − manual ({k} networks each): {gap:+.4f}, 90% bootstrap interval '
                     f'[{lo:+.4f}, {hi:+.4f}]; the {n} EDF lies left of the manual one outside the bands: '
                     f'**{"yes" if hi < 0 else "no"}**.')
        if n != 'learned' and 'learned' in errors:    # a redesign against the default learned space too
            k, gap, lo, hi = edf_gap(errors, n, S['boot'], against='learned')
            lines[-1] += (f' Against the default `learned` space ({k} each): {gap:+.4f}, 90% interval '
                          f'[{lo:+.4f}, {hi:+.4f}].')
    lines[-1] += f' ![error EDFs]({png.name})'
    from benchmarks._anatomy import edf_why_lines
    return lines + edf_why_lines(edf_samples, spaces)


#: each evolution of the protocol: (its cache folder, what it is)
EVOLUTIONS = (('evolve_ref-default', '`learned`'), ('evolve_ref-none', '`learned-no-ref`'),
              ('evolve_budget-small', '`learned-small`'), ('evolve_1edge', '`learned-1edge`'),
              ('evolve_eval-all', '`learned-eval-all`'))


def reliability_lines(work):
    """How much of each evolution's score spread tells cells apart (:func:`benchmarks._anatomy.score_reliability`)."""
    from benchmarks._anatomy import evolution_reliability, scores_needed
    parts = []
    for folder, what in EVOLUTIONS:
        r = evolution_reliability(work, folder)
        if r is not None and np.isfinite(r['icc']):
            parts.append(f'{what}: ICC {r["icc"]:.2f} over {r["cells"]} cells scored {r["scores_per_cell"]:.1f} times '
                         f'on average (sd of a score {r["sd_within"]:.3f}, of the cells\' true scores '
                         f'{r["sd_between"]:.3f}; a mean reliable to 0.8 needs {scores_needed(r["icc"]):.0f} scores)')
    return (['\nScore reliability within each evolution (one-way intraclass correlation of the scores of cells scored '
             'at least twice: the share of a score\'s variance that tells cells apart): ' + '; '.join(parts) + '.']
            if parts else [])


def pareto_plot(rows, p2, budget, path):
    """Test accuracy against MAdds of every retrained winner, one marker per space, P2's as a star."""
    from benchmarks._report import figure
    with figure(path, 'Retrained search winners', 'MAdds (M)', 'test accuracy') as ax:
        for name, marker in (('learned', 'o'), ('manual', 's'), ('learned-no-ref', '^'), ('learned-small', 'v'),
                             ('learned-1edge', 'D'), ('learned-eval-all', 'P')):
            rs_ = [r for r in rows if r['space'] == name]
            if rs_:
                ax.scatter([r['madds'] / 1e6 for r in rs_], [r['test_acc'] for r in rs_], marker=marker, label=name,
                           alpha=0.8)
        if p2 is not None:
            ax.scatter([p2['madds'] / 1e6], [p2['test_acc']], marker='*', s=120, color='k',
                       label=f'P2 ({rung_text(rung_of(p2))})')
        ax.axvline(budget / 1e6, color='grey', ls='--', lw=0.8)


def _unit_name(pending_item: str) -> str:
    """A pending unit's cache folder name, from its awaited ``.../<unit>/result.json`` or its ``<dir> (k/n)``."""
    return (Path(pending_item).parent.name if pending_item.endswith('.json')
            else Path(pending_item.split(' ')[0]).name)


def pending_hours(pending, rows, budget) -> tuple:
    """How long the pending P1 units should take: each at the mean wall time (search + retrain) of the finished
    units of its algorithm at ``budget`` (P1's and the side questions' alike). Returns (hours, how many pending P1
    units that counts, {algorithm: hours per unit})."""
    per = {}
    for r in rows:
        if r.get('budget') == budget and 'search_wall_time_s' in r and 'retrain_wall_time_s' in r:
            per.setdefault(r['strategy'], []).append(r['search_wall_time_s'] + r['retrain_wall_time_s'])
    per = {a: float(np.mean(t)) / 3600 for a, t in per.items()}
    names = [_unit_name(p).split('_') for p in pending if p.endswith('.json')]
    counted = [n[1] for n in names if n[0] == 'p1' and len(n) > 1 and n[1] in per]
    return sum(per[a] for a in counted), len(counted), per


def pending_line(pending, rows=(), budget=None):
    """The units not yet run, by their cache folder's name, and how long the P1 ones among them should take
    (:func:`pending_hours`)."""
    hours, n, per = pending_hours(pending, rows, budget)
    who = 'all are P1 units, and they' if n == len(pending) else f'the {n} P1 units among them'
    eta = (f'; {who} should take about {hours:.0f} h, at the mean wall time (search and retrain) of the units '
           'finished at this budget (' + ', '.join(f'{a} {h:.1f} h' for a, h in sorted(per.items())) +
           ' per unit)') if n else ''
    return (f'\nPending ({len(pending)} unit{"s" * (len(pending) != 1)} not yet run{eta}): ' +
            ', '.join(_unit_name(p) for p in pending[:12]) + (' ...' if len(pending) > 12 else ''))


def report(scale, S, work, spaces, rows, edf_dirs, p2_rungs, pending, out_dir, fq_work) -> tuple:
    """The report's markdown body and the summary (also written to ``work``/summary.json); ``p2_rungs`` as in
    :func:`p2_section`; the plots go to ``out_dir``; the fitness-quality cache ``fq_work`` gives the estimator's
    view of multi-edge cells."""
    B = S['budget']
    lines = []
    if scale == 'smoke':
        lines.append('**Smoke scale: toy sizes that keep the script working; these numbers mean nothing.**\n')
    lines.append(f'Budget B = {B / 1e6:.3g} M MAdds; every search\'s winner must land in [0.9 B, B]. Searches on '
                 f'{S["search_limit"] or "all"} training images; winners retrained {S["retrain_epochs"]} epochs on the '
                 f'full training split (translations), tested once on the official test split. Seeds {S["seeds"]}, the '
                 f'same seed on both spaces; paired tests from scipy.stats.\n')
    p1_lines, p1 = p1_section(S, rows)
    lines += p1_lines
    for name in P1_LEARNED[1:]:    # the redesign's own P1 (summary.json keeps 'learned')
        lines += ['', f'The redesign `{name}` against the same manual-space winners (same seeds):', '']
        lines += p1_section(S, rows, learned=name)[0]
        if edf_screened_out(S, edf_dirs, name) and not any(r['space'] == name for r in rows):
            lines.append(f'\nIts EDF lies right of the manual one, outside the bands (below), so its P1 pairs wait '
                         'until every other unit has run: the cheaper screen already says it is no better.')
    # what the winners are made of (a space of pricier cells fills the budget with fewer blocks), and whether the
    # estimator rates the learned space's multi-edge cells as it should (the fitness-quality benchmark's cache)
    from benchmarks._anatomy import estimator_bias, why_lines
    lines += why_lines(spaces, {n: [r for r in rows if r['space'] == n and r['budget'] == B]
                                for n in ('learned', 'manual')}, estimator_bias(fq_work))
    lines += spaces_lines(S, spaces)
    lines += reliability_lines(work)
    if 'manual' in edf_dirs and len(edf_dirs) >= 2:
        lines += edf_section(S, edf_dirs, Path(out_dir) / f'space_quality_{scale}_edf.png', spaces)
        from benchmarks._anatomy import retest_lines
        lines += retest_lines(S, work, spaces)
    lines += side_lines(S, work, rows, Path(out_dir) / f'space_quality_{scale}_convergence.png', spaces)
    if rows:
        pareto = Path(out_dir) / f'space_quality_{scale}_pareto.png'
        pareto_plot(rows, p2_network(p2_rungs), B, pareto)
        lines.append(f'\n![accuracy against MAdds]({pareto.name})')
    p2_lines, p2_summary = p2_section(S, work, p2_rungs)
    lines += p2_lines
    curves = Path(out_dir) / f'space_quality_{scale}_p2.png'
    if p2_curves_plot(S, work, p2_rungs, curves):
        lines.append(f'\n![P2: held-out accuracy per epoch]({curves.name})')
    if pending:
        lines.append(pending_line(pending, rows, B))
    summary = {'p1': p1, 'p2': p2_summary}
    (Path(work) / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    return '\n'.join(lines), summary
