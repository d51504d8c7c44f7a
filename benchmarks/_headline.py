"""What space_quality.py found, in a few bullets: its goals' verdicts and the figures behind them, written by the
script between two markers of the README (``write_block`` in benchmarks/_report.py) so that no figure there is typed
by hand. Every figure comes from the same rows, caches and functions as the full report in docs/benchmarks.md; this
module trains nothing, so it is tested on made-up rows with known answers."""

import textwrap
from pathlib import Path

import numpy as np

from benchmarks._paired import paired_test, seed_pairs
from benchmarks._p2_report import P2_GOAL, P2_MADDS, next_rung, p2_diagnosis, p2_network, p2_tag, rung_of, rung_text
from benchmarks._space_report import EDF_SPACES, P1_ALPHA, P1_GAIN, P1_LEARNED, edf_gap, p1_section, p1_verdict

WIDTH = 118          # the README's line length
NOISY_ICC = 0.3      # a score reliability below it: most of a score's spread is noise
ALGORITHMS = {'darts': 'DARTS', 'evolution': 'RegularizedEvolution'}


def _signed(x: float, digits: int) -> str:
    return f'{x:+.{digits}f}'.replace('-', '−')


def _pts(x: float) -> str:
    """A difference of accuracies (fractions) in points, signed."""
    return _signed(100 * x, 2) + ' points'


def _seeds(n: int) -> str:
    return f'{n} paired seed' + 's' * (n != 1)


def _p(p) -> str:
    return f'Wilcoxon p {p:.3f}' if p is not None and np.isfinite(p) else 'too few pairs for a test'


def paired_words(pairs) -> str:
    """(a, b) row pairs, compact: mean gap of a − b, pairs, Wilcoxon p, and how many pairs a wins."""
    if not pairs:
        return 'pending'
    t = paired_test([a['test_acc'] for a, _ in pairs], [b['test_acc'] for _, b in pairs])
    wins = sum(a['test_acc'] > b['test_acc'] for a, b in pairs)
    return f'{_pts(t["delta"])} ({_seeds(t["n"])}, {_p(t["p_wilcoxon"])}; the first ahead in {wins})'


def p1_bullet(S, rows) -> str:
    """Goal P1: its verdict for the default learned space, each algorithm's paired gap, and whether any remaining
    seed could still change the verdict."""
    _, p1 = p1_section(S, rows)
    algos = p1['algorithms']
    verdict, _, complete, best, hopeless = p1_verdict(S, rows, algos)
    parts = []
    for a, v in algos.items():
        pairs = seed_pairs(rows, a, S['budget'])
        wins = sum(l['test_acc'] > m['test_acc'] for l, m in pairs)
        parts.append(f'{ALGORITHMS.get(a, a)}\'s winners, learned − manual: {_pts(v["delta"])} '
                     f'({v["learned_mean"]:.4f} vs {v["manual_mean"]:.4f} test accuracy; {_seeds(v["seeds"])}, '
                     f'{_p(v["p_value"])}; the learned one ahead in {wins})')
    text = (f'**Goal P1 (the learned space beats the hand-made one by ≥ {100 * P1_GAIN:.1f} points, paired p < '
            f'{P1_ALPHA}, at matched MAdds in [0.9 B, B], B = {S["budget"] / 1e6:.3g} M): {verdict}.** ')
    text += ('; '.join(parts) + '.') if parts else 'No pair has finished.'
    if not complete and hopeless:
        text += (' The smallest p the remaining seeds allow is ' + ', '.join(
            f'{best[a]:.3f} for {ALGORITHMS.get(a, a)}' for a in hopeless) + f': at or above {P1_ALPHA}, so they '
                 'cannot change the verdict.')
    return text


def edf_bullet(S, edf_dirs) -> str:
    """Random networks of each space at matched MAdds: each learned space's mean error minus the manual one's."""
    from autospace_nni.design_space import load_samples
    if 'manual' not in edf_dirs or 'learned' not in edf_dirs:
        return ''
    errors = {n: [r['error'] for r in load_samples(edf_dirs[n])] for n in EDF_SPACES if n in edf_dirs}
    parts = []
    for n in (x for x in EDF_SPACES if x in errors and x != 'manual'):
        k, gap, lo, hi = edf_gap(errors, n, S['boot'])
        parts.append(f'`{n}` {_signed(gap, 4)} [{_signed(lo, 4)}, {_signed(hi, 4)}] ({k} networks)')
    return ('Random networks at matched MAdds (error EDFs, short training): the mean error of each learned space '
            'minus the manual one\'s, with 90% bootstrap intervals: ' + '; '.join(parts) + '.')


def why_bullet(work, spaces, bias) -> str:
    """What the report's anatomy says of the default learned space: how much of its evolution's score spread tells
    cells apart, its share of multi-edge cells, and how the estimator rates those against how they train alone."""
    from benchmarks._anatomy import evolution_reliability, space_makeup
    if not spaces or not spaces.get('learned'):
        return ''
    text = '**Why, as far as the figures say:**'
    r = evolution_reliability(work, 'evolve_ref-default')
    if r is not None and np.isfinite(r['icc']):
        noise = r['icc'] < NOISY_ICC
        text += (f' the fitness scores {"are mostly noise" if noise else "tell cells apart"}: two scores of one '
                 f'cell agree with an intraclass correlation of {r["icc"]:.2f} ({r["cells"]} cells scored '
                 f'{r["scores_per_cell"]:.1f} times on average)' +
                 (', so the learned top cells are close to a draw from the admissible ones.' if noise else '.'))
    text += f' {space_makeup(spaces["learned"])["multi_edge"]:.0%} of the learned space\'s cells are multi-edge graphs.'
    if bias and bias['mbconv']['n'] and bias['multi']['n']:
        s, m = bias['mbconv'], bias['multi']
        text += (f' The fitness estimator scores them {m["score"]:.3f} against {s["score"]:.3f} for MBConv cells, yet '
                 f'trained alone they reach {100 * (s["truth"] - m["truth"]):.1f} points '
                 f'{"less" if m["truth"] < s["truth"] else "more"} held-out accuracy.')
    return text


def p2_bullet(S, work, rungs) -> str:
    """Goal P2: the best network so far (the finished rung with the best held-out accuracy) and, while the ladder
    goes on, how far its next rung has got beside the best finished one at the same epoch."""
    from autospace_nni.retrain import progress
    head = f'**Goal P2 (≥ {P2_GOAL} test accuracy at ≤ {P2_MADDS / 1e6:.3g} M MAdds): '
    p2, nxt = p2_network(rungs), next_rung(S, rungs)
    if p2 is None:
        return head + 'pending.**'
    met = p2['test_acc'] >= P2_GOAL
    going = not met and p2['val_acc'] < P2_GOAL and nxt is not None
    text = head + ('met' if met else 'not met yet' if going else 'NOT met') + (
        f'.** The best network{" so far" * going} reaches {p2["test_acc"]:.4f} test accuracy ({p2["val_acc"]:.4f} '
        f'held-out) at {p2["madds"] / 1e6:.2f} M MAdds and {p2["params"] / 1e3:.0f} k params '
        f'({rung_text(rung_of(p2))}).')
    why = p2_diagnosis(S, work, p2)
    if not met and why:
        text += ' ' + diagnosis_words(why)
    if not met and not going and len(rungs) > 1:
        text += ' ' + last_rung_words(S, work, rungs)
    if going:
        done = progress(Path(work) / p2_tag(S, nxt) / 'retrain.ckpt')
        text += f' The next retrain ({rung_text(nxt)}) '
        if not done:
            return text + 'has not started.'
        h = [e['val_acc'] for e in done['history']]
        k = len(h)
        base = (p2.get('val_history') or []) if p2['retrain_epochs'] == nxt['epochs'] else []   # the same schedule
        beside = f', against {base[k - 1]:.4f} for the best network after the same epoch' if len(base) >= k else ''
        text += (f'has run {k} of {nxt["epochs"]} epochs: {h[-1]:.4f} held-out after the last{beside}; its best so '
                 f'far is {max(h):.4f}. It replaces the network only if it ends above {p2["val_acc"]:.4f} held-out.')
    return text


def last_rung_words(S, work, rungs) -> str:
    """Once P2's ladder has ended: what its last retrain reached and, where both networks were examined, what its
    recipe changed against the network it was compared with (P2's network if not itself, else the rung before)."""
    from benchmarks._diagnosis import change_words
    p2, last = p2_network(rungs), rungs[-1]
    text = f'The last retrain tried ({rung_text(rung_of(last))}) ended at {last["val_acc"]:.4f} held-out '
    if last is not p2:
        other, than = p2, 'the best network'
        text += f'({last["test_acc"]:.4f} test accuracy), below {p2["val_acc"]:.4f}, so it was not picked'
    else:
        other, than = rungs[-2], 'the one before'
        text += f'and was picked; the one before ({rung_text(rung_of(other))}) had {other["val_acc"]:.4f}'
    a, b = p2_diagnosis(S, work, other), p2_diagnosis(S, work, last)
    return text + (f'. Beside {than}, {change_words(a, b)}.' if a and b else '.')


def diagnosis_words(d: dict, worst: int = 3) -> str:
    """A network's :func:`benchmarks._diagnosis.diagnose` record in a sentence: its fit of the un-augmented training
    split, and the share of its test errors in its ``worst`` classes."""
    from benchmarks._diagnosis import weak_classes
    w = weak_classes(d, worst)
    return (f'It classifies {d["train_acc"]:.2%} of its training images (without augmentation), so what limits it '
            f'is {"generalisation" if d["train_acc"] >= P2_GOAL else "its fit"}; '
            f'{w["weak_errors"] / max(w["errors"], 1):.0%} of its {w["errors"]} test errors fall in {worst} '
            f'class{"es" * (worst != 1)} (' + ', '.join(d['classes'][c] for c in w['weak']) + ').')


def side_bullet(S, rows) -> str:
    """The paper's two other claims: the reference on vs off (DARTS winners) and budget specialisation."""
    B, small = S['budget'], S['spec_budget']
    ref = paired_words(seed_pairs(rows, 'darts', B, 'learned', 'learned-no-ref'))
    at_small = paired_words(seed_pairs(rows, 'darts', small, 'learned-small', 'learned'))
    at_large = paired_words(seed_pairs(rows, 'darts', B, 'learned', 'learned-small'))
    return ('**The paper\'s two other claims, tested with DARTS:** the DARTS winners with the reference minus without '
            f'it: {ref}. A space learned at a budget minus the one learned at the other, both searched at that budget: '
            f'at {small / 1e6:.3g} M {at_small}; at {B / 1e6:.3g} M {at_large}.')


def redesign_bullet(S, rows) -> str:
    """P1's verdict for each redesign of the learned space that has a finished pair."""
    parts = []
    for name in P1_LEARNED[1:]:
        _, p1 = p1_section(S, rows, learned=name)
        if p1['algorithms']:
            verdict = p1_verdict(S, rows, p1['algorithms'], name)[0]
            parts.append(f'`{name}`: {verdict} (' + '; '.join(
                f'{ALGORITHMS.get(a, a)} {_pts(v["delta"])} over {_seeds(v["seeds"])}'
                for a, v in p1['algorithms'].items()) + ')')
    return ('Goal P1 for the redesigns: ' + '; '.join(parts) + '.') if parts else ''


def headline(S, work, rows, edf_dirs, p2_rungs, spaces=None, bias=None) -> str:
    """The README's bullets on what the protocol at scale ``S`` found (see the module's docstring)."""
    bullets = [p1_bullet(S, rows), edf_bullet(S, edf_dirs), redesign_bullet(S, rows), why_bullet(work, spaces, bias),
               p2_bullet(S, work, p2_rungs), side_bullet(S, rows)]
    return '\n'.join(textwrap.fill(b, WIDTH, initial_indent='- ', subsequent_indent='  ', break_long_words=False,
                                   break_on_hyphens=False) for b in bullets if b)
