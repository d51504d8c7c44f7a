"""The two side questions of space_quality.py's report: whether the reference speeds up the evolution (how fast its
top-M sets settle, with and without the reference, and the DARTS winners of both spaces paired by seed) and budget
specialisation (spaces learned at two budgets, each searched at both). Like benchmarks/_space_report.py, it trains
nothing and is tested on made-up rows with known answers."""

import json
from pathlib import Path

import numpy as np

from benchmarks._paired import paired_test, seed_pairs


def convergence(history, stable_for=3):
    """The first iteration whose top-M sets (every group's) then stayed unchanged through the next ``stable_for``
    iterations (None: never). A record's ``stable_iterations`` counts the iterations in a row whose sets equal
    their predecessor's, so the sets of iteration i - k are those of iteration i when it reaches k."""
    for h in history:
        if h.get('stable_iterations', 0) >= stable_for:
            return h['iteration'] - stable_for
    return None


def churn_shares(history):
    """Per iteration, the share of all groups' top-M slots taken by cells new to the top-M (the first iteration's
    count is every slot, since everything is new then)."""
    per = [sum(v for k, v in h.items() if k.startswith('churn/')) for h in history]
    return [c / per[0] for c in per] if per and per[0] else []


def settled(history, share=0.25):
    """The first iteration from which the churn share stays at or below ``share`` (None: never)."""
    s = churn_shares(history)
    for i in range(len(s)):
        if all(x <= share for x in s[i:]):
            return history[i]['iteration']
    return None


def convergence_plot(hist, path):
    """Top-M churn share per iteration, with and without the reference. (The held-out accuracy an evolution
    records is its base network's: all-reference with the reference, each group's first candidate without it, so
    the two are not compared.)"""
    from benchmarks._report import figure
    with figure(path, 'top-M churn (cells new to the top-M, share of all slots)', 'iteration', size=(5, 3.2),
                title_size=9) as ax:
        for ref, label in (('default', 'with the reference'), ('none', 'without')):
            ax.plot([h['iteration'] for h in hist[ref]], churn_shares(hist[ref]), marker='.', label=label)
        ax.axhline(0.25, color='grey', ls='--', lw=0.8)


def side_lines(S, work, rows, png=None, spaces=None):
    """The two side questions: the reference on vs off (how fast each evolution settles, its plot written to
    ``png``, and DARTS winners paired by seed) and budget specialisation (spaces learned at two budgets, each
    searched at both; with ``spaces``, how far the space learned at the smaller budget moved from the other)."""
    B, side, lines = S['budget'], S['seeds'][:S['side_seeds']], []
    hist = {}
    for ref in ('default', 'none'):
        f = Path(work) / f'evolve_ref-{ref}' / 'history.jsonl'
        hist[ref] = [json.loads(l) for l in f.read_text().splitlines()] if f.exists() else None
    if all(hist.values()):
        winners = paired_gap(seed_pairs(rows, 'darts', B, 'learned', 'learned-no-ref'))

        def when(it, h):
            return f'never in {len(h)} iterations' if it is None else f'from iteration {it}'

        def main_churn(h):   # mean churn share over the main phase (neither warm-up nor finals)
            return np.mean([c for c, r in zip(churn_shares(h), h) if not r.get('warmup') and not r.get('final')])
        on, off = hist['default'], hist['none']
        lines.append(f'\nReference on vs off (one evolution each): every top-M set unchanged 3 iterations: with the '
                     f'reference {when(convergence(on), on)}, without it {when(convergence(off), off)}; top-M churn '
                     f'(cells new to the top-M, as a share of all slots) stays at or below 25% '
                     f'{when(settled(on), on)} with the reference and {when(settled(off), off)} without it, mean over '
                     f'the main phase {main_churn(on):.0%} vs {main_churn(off):.0%}. DARTS winners, with − without: '
                     f'{winners}.')
        if png is not None:
            convergence_plot(hist, png)
            lines[-1] += f' ![convergence with and without the reference]({Path(png).name})'
    spec = {}
    for r in rows:
        if r['strategy'] == 'darts' and r['space'] in ('learned', 'learned-small') and r['seed'] in side:
            spec.setdefault((r['space'], 'large' if r['budget'] == B else 'small'), []).append(r)
    if spec:
        lines += ['', f'Budget specialisation (DARTS, seeds {side}): spaces learned at {B / 1e6:.3g} M and '
                      f'{S["spec_budget"] / 1e6:.3g} M, each searched at both; mean test accuracy (mean MAdds).', '',
                  '| space learned at | searched at large | searched at small |', '|---|---|---|']
        for sname in ('learned', 'learned-small'):
            cells = [spec.get((sname, b)) for b in ('large', 'small')]
            lines.append(f'| {"large" if sname == "learned" else "small"} | ' + ' | '.join(
                'pending' if not c else f'{np.mean([r["test_acc"] for r in c]):.4f} '
                                        f'({np.mean([r["madds"] for r in c]) / 1e6:.2f} M, {len(c)} of {len(side)} '
                                        'seeds)' for c in cells) + ' |')
        lines += ['', 'Paired by seed, at each budget, the space learned at that budget − the one learned at the '
                      'other: ' + '; '.join(
                          f'searched at {b / 1e6:.3g} M {paired_gap(seed_pairs(rows, "darts", b, *names))}'
                          for b, names in ((S['spec_budget'], ('learned-small', 'learned')),
                                           (B, ('learned', 'learned-small')))) + '.']
        if spaces and spaces.get('learned') and spaces.get('learned-small'):
            from benchmarks._anatomy import budget_contrast
            c = budget_contrast(spaces['learned'], spaces['learned-small'])

            def m(d):
                return (f'{d["mean"] / 1e6:.1f} M [{d["p10"] / 1e6:.1f}, {d["p90"] / 1e6:.1f}], priciest '
                        f'{d["max"] / 1e6:.1f} M')
            lines += ['', f'The two spaces share {c["shared"]} of {c["cells"]} cells ({c["shared_evolved"]} of them '
                          'evolved, the others the reference). Networks drawn uniformly from '
                          f'each (mean MAdds [10th, 90th percentile]): learned at {S["spec_budget"] / 1e6:.3g} M '
                          f'{m(c["small"])}; learned at {B / 1e6:.3g} M {m(c["large"])}.']
    return lines


def paired_gap(pairs) -> str:
    """Mean test-accuracy gap of (a, b) row pairs, in points, with each pair and the Wilcoxon p from two pairs."""
    if not pairs:
        return 'pending'
    t = paired_test([a['test_acc'] for a, _ in pairs], [b['test_acc'] for _, b in pairs])
    each = ', '.join(f'seed {a["seed"]} {a["test_acc"]:.4f} vs {b["test_acc"]:.4f}' for a, b in pairs)
    test = f'Wilcoxon p {t["p_wilcoxon"]:.3f}' if t['n'] >= 2 else 'a paired test needs two'
    return f'{100 * t["delta"]:+.2f} points ({t["n"]} pair{"s" * (t["n"] != 1)}: {each}; {test})'
