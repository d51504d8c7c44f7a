"""The paired statistics behind space_quality.py's goal P1: the learned and the manual space searched with the same
seed form a pair; the pairs are compared with scipy's exact Wilcoxon signed-rank test (a paired t-test beside it),
and ``best_case_p`` says when the seeds still pending can no longer change the verdict."""

import numpy as np


def paired_test(a, b) -> dict:
    """Paired comparison of a and b (same seeds): mean difference, Wilcoxon signed-rank and paired t p-values."""
    from scipy.stats import ttest_rel, wilcoxon
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    out = {'n': int(len(d)), 'delta': float(d.mean()) if len(d) else float('nan'), 'p_wilcoxon': float('nan'),
           'p_ttest': float('nan')}
    if len(d) >= 2 and np.any(d != 0):
        out['p_wilcoxon'] = float(wilcoxon(a, b).pvalue)
        out['p_ttest'] = float(ttest_rel(a, b).pvalue)
    return out


def p1_deltas(rows, S, B, learned: str = 'learned') -> dict:
    """For each algorithm, its finished P1 pairs' test accuracy on the space ``learned`` minus that on the manual
    space (one per seed)."""
    acc = {(r['strategy'], r['space'], r['seed']): r['test_acc'] for r in rows if r['budget'] == B}
    return {a: [acc[(a, learned, s)] - acc[(a, 'manual', s)] for s in S['seeds']
                if (a, learned, s) in acc and (a, 'manual', s) in acc] for a in S['strategies']}


def best_case_p(deltas, pending: int) -> float:
    """The smallest two-sided Wilcoxon p the finished paired differences ``deltas`` still allow once ``pending`` more
    pairs finish: every pending pair in favour and larger than any so far (so it takes the top ranks). At or above
    the goal's 0.1, no remaining seed can make the gap significant: the verdict is decided."""
    from scipy.stats import wilcoxon
    d = [float(x) for x in deltas if x != 0]
    big = max([abs(x) for x in d], default=1.0)
    d += [big * (2 + i) for i in range(pending)]
    return float(wilcoxon(d).pvalue) if len(d) >= 1 else 1.0


def best_case_ps(rows, S, B, learned: str = 'learned') -> dict:
    """For each algorithm, the :func:`best_case_p` of its finished P1 pairs on the space ``learned`` with the rest of
    S's seeds pending."""
    return {a: best_case_p(d, len(S['seeds']) - len(d)) for a, d in p1_deltas(rows, S, B, learned).items()}


def p1_open(rows, S, B, learned: str = 'learned', alpha: float = 0.1) -> bool:
    """Whether the seeds still pending could meet goal P1 for the space ``learned``: P1 needs every algorithm's
    Wilcoxon p below ``alpha``, so one algorithm whose :func:`best_case_p` is at or above it decides the goal."""
    return all(p < alpha for p in best_case_ps(rows, S, B, learned).values())


def seed_pairs(rows, strategy, budget, a='learned', b='manual'):
    """(row of space a, row of space b) for each seed both spaces have with ``strategy`` at ``budget``."""
    return [(l, m) for l in rows for m in rows
            if l['strategy'] == m['strategy'] == strategy and l['seed'] == m['seed']
            and l['budget'] == m['budget'] == budget and l['space'] == a and m['space'] == b]
