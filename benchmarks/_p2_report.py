"""Goal P2's part of space_quality.py's report: the ladder of retrains of its one winner (each from scratch, the
next tried only while the best held-out accuracy is below the goal), which rung is P2's network (the best held-out
one, so the test split picks nothing), its line and summary value, the held-out curves, and how far an unfinished
rung has got (from its checkpoint). It trains nothing, so it is tested on made-up records with known answers.
"""

import json
from pathlib import Path

P2_MADDS = 25e6      # goal P2's budget
P2_GOAL = 0.955      # goal P2's test accuracy


def p2_ladder(S) -> list:
    """P2's retrains of its one winner, in the order they are tried, each from scratch: the base recipe (translations
    and random erasing) for each number of epochs in ``S['p2_epochs']``, then, if the scale has one,
    ``S['p2_regularised']``: its number of epochs with horizontal flips and a stronger weight decay added."""
    return [{'epochs': e} for e in S['p2_epochs']] + ([dict(S['p2_regularised'])] if S.get('p2_regularised') else [])


def p2_tag(S, rung) -> str:
    """The cache folder of P2's retrain ``rung`` (a :func:`p2_ladder` entry, or a number of epochs of the base
    recipe) at scale ``S``."""
    r = {'epochs': rung} if isinstance(rung, int) else rung
    extra = ('_flip' if r.get('flip') else '') + (f'_wd{r["weight_decay"]:g}' if 'weight_decay' in r else '')
    return f'p2_{S["p2_strategy"]}_learned_{r["epochs"]}epochs{extra}'


def rung_of(record) -> dict:
    """The :func:`p2_ladder` entry a finished P2 retrain's record was trained with."""
    return {'epochs': record['retrain_epochs'], **record.get('recipe', {})}


def p2_diagnosis(S, work, record):
    """The ``diagnosis.json`` that space_quality.py wrote for P2's finished retrain ``record`` (None if none)."""
    path = Path(work) / p2_tag(S, rung_of(record)) / 'diagnosis.json'
    return json.loads(path.read_text()) if path.exists() else None


def p2_network(rungs):
    """P2's network among its finished retrains ``rungs``: the one with the best held-out accuracy, so the test split
    picks nothing (None before any has finished)."""
    return max(rungs, key=lambda r: r['val_acc']) if rungs else None


def next_rung(S, rungs):
    """The :func:`p2_ladder` entry after the last of P2's finished retrains ``rungs`` (the first without any; None
    after the ladder's last)."""
    ladder = p2_ladder(S)
    if not rungs:
        return ladder[0]
    last = rung_of(rungs[-1])
    return ladder[ladder.index(last) + 1] if last in ladder[:-1] else None


def rung_text(rung) -> str:
    """A rung as words: its epochs, and what its recipe adds to the base one."""
    adds = (['horizontal flips'] if rung.get('flip') else []) + (
        [f'weight decay {rung["weight_decay"]:g}'] if 'weight_decay' in rung else [])
    return f'{rung["epochs"]} epochs' + (f' with {" and ".join(adds)}' if adds else '')


def _held_out_so_far(S, work, rung) -> list:
    """The held-out accuracy after each epoch of P2's unfinished retrain ``rung``, read from its checkpoint."""
    from autospace_nni.retrain import progress
    done = progress(Path(work) / p2_tag(S, rung) / 'retrain.ckpt')
    return [h['val_acc'] for h in done['history']] if done else []


def _retrain_progress(S, work, rung, rungs=()) -> str:
    """How far P2's retrain ``rung`` (a :func:`p2_ladder` entry) has got ('' before it has started), beside the
    finished ``rungs`` of as many epochs (the same cosine schedule) at the same epochs."""
    from autospace_nni.retrain import progress
    tag, epochs = Path(work) / p2_tag(S, rung), rung['epochs']
    rec = json.loads((tag / 'search.json').read_text()) if (tag / 'search.json').exists() else None
    done = progress(tag / 'retrain.ckpt')
    if not (rec and done):
        return ''
    last = done['history'][-6:]
    same = [r for r in rungs if r['retrain_epochs'] == epochs and len(r.get('val_history') or []) >= done['epochs']]
    beside = ''.join(f'; after the same epochs, the finished retrain of {rung_text(rung_of(r))} had ' +
                     ', '.join(f'{r["val_history"][h["epoch"]]:.4f}' for h in last) for r in same)
    return (f'; the search is done (winner {rec["madds"] / 1e6:.2f} M MAdds, {rec["params"] / 1e3:.0f} k '
            f'params) and its retrain has run {done["epochs"]} of {epochs} epochs '
            f'({done["wall_s"] / 3600:.1f} h; held-out accuracy after epoch ' +
            ', '.join(f'{h["epoch"] + 1}: {h["val_acc"]:.4f}' for h in last) + beside + ')')


def p2_curves_plot(S, work, rungs, path) -> list:
    """Held-out accuracy after each epoch of P2's retrains: the finished ``rungs`` (from their records) and the
    next rung while it trains (from its checkpoint), with the goal as a line. Returns the curves' labels (none, and no
    file, without a curve)."""
    curves = [(rung_text(rung_of(r)), r['val_history']) for r in rungs if r.get('val_history')]
    nxt = next_rung(S, rungs)
    if nxt and (h := _held_out_so_far(S, work, nxt)):
        curves.append((f'{rung_text(nxt)} (training)', h))
    if not curves:
        return []
    from benchmarks._report import figure
    # the legend goes below the late epochs, where the curves have risen and none runs
    with figure(path, "P2's retrains of its winner", 'epoch', 'held-out accuracy', size=(8, 4.2),
                legend='lower right') as ax:
        for label, h in curves:
            ax.plot(range(1, len(h) + 1), h, label=label, lw=1.2)
        ax.axhline(P2_GOAL, color='grey', ls='--', lw=0.8, label=f'goal ({P2_GOAL}, on the test split)')
        ax.set_ylim(min(min(h) for _, h in curves) - 0.01, max(P2_GOAL, *(max(h) for _, h in curves)) + 0.01)
    return [label for label, _ in curves]


def _last_quarter(rung) -> str:
    """What a retrain's last quarter of epochs added to its held-out accuracy ('' for a record without its
    history): near zero, more of the same schedule is unlikely to help."""
    h = rung.get('val_history') or []
    if len(h) < 4:
        return ''
    k = len(h) - len(h) // 4
    return f', {100 * (h[-1] - h[k - 1]):+.2f} points over epochs {k + 1}-{len(h)}'


def p2_section(S, work, rungs):
    """Goal P2's line and summary.json's ``p2`` value (None until a retrain has finished). ``rungs``: P2's finished
    retrains of the same winner, in :func:`p2_ladder`'s order; the next is tried only while the best held-out
    accuracy so far is below the goal, and P2's network is the rung with the best held-out accuracy, so the test
    split picks nothing."""
    head = f'\nGoal P2 (≥ {P2_GOAL} test accuracy at ≤ {P2_MADDS / 1e6:.3g} M MAdds): '
    nxt = next_rung(S, rungs)
    if not rungs:
        return [head + f'pending (a search of the learned space at {P2_MADDS / 1e6:.3g} M MAdds, its winner trained '
                       f'{rung_text(nxt)}){_retrain_progress(S, work, nxt)}.'], None
    p2 = p2_network(rungs)
    tried = '; '.join(f'{rung_text(rung_of(r))}: {r["test_acc"]:.4f} test accuracy ({r["val_acc"]:.4f} '
                      f'held-out{_last_quarter(r)})' for r in rungs)
    if p2['test_acc'] >= P2_GOAL:
        verdict = '**met**.'
    elif p2['val_acc'] < P2_GOAL and nxt:
        verdict = (f'**not met yet**: the held-out accuracy is below {P2_GOAL}, so the same winner is trained again '
                   f'from scratch for {rung_text(nxt)} (pending{_retrain_progress(S, work, nxt, rungs)}).')
    else:
        verdict = '**NOT met**.'
    if p2 is not rungs[-1]:
        verdict += (f' P2\'s network is the retrain with the best held-out accuracy ({rung_text(rung_of(p2))}, '
                    f'{p2["test_acc"]:.4f} test accuracy).')
    line = (head + f'the learned space searched with {p2["strategy"]} at {P2_MADDS / 1e6:.3g} M MAdds (seed '
                   f'{p2["seed"]}), its winner ({p2["madds"] / 1e6:.2f} M MAdds, {p2["params"] / 1e6:.2f} M params) '
                   f'retrained with translations and random erasing for {tried} → {verdict}')
    lines = [line]
    why = p2_diagnosis(S, work, p2)                  # P2's network examined, then beside the other examined rungs
    if why:
        from benchmarks._diagnosis import compare_lines, diagnosis_lines
        lines += ['', *diagnosis_lines(why, P2_GOAL)]
        others = [(rung_text(rung_of(r)), d) for r in rungs if r is not p2 and (d := p2_diagnosis(S, work, r))]
        if others:
            lines += ['', 'What each examined retrain\'s recipe changed, by its own predictions (P2\'s network '
                          'first; its weakest test classes):', '',
                      *compare_lines([(rung_text(rung_of(p2)), why), *others])]
    return lines, {'best_test_acc': p2['test_acc'], 'madds': p2['madds'], 'params': p2['params'],
                   'arch': json.dumps(p2['sample'], sort_keys=True)}
