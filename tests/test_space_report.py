"""space_quality.py's report (benchmarks/_space_report.py, benchmarks/_p2_report.py, benchmarks/_side_report.py) on
made-up rows with known answers: the P1 verdict and its summary.json in the shape the protocol fixes, P2's verdict
and progress line, the side questions' pairing."""

import json

import numpy as np
import pytest

from benchmarks._side_report import churn_shares, convergence, settled, side_lines
from benchmarks._p2_report import P2_GOAL, p2_ladder, p2_section, p2_tag
from benchmarks._space_report import p1_section, pending_hours, pending_line

S = {'budget': 12e6, 'spec_budget': 7e6, 'seeds': [0, 1, 2, 3, 4], 'strategies': ['darts', 'evolution'],
     'side_seeds': 2, 'p2_strategy': 'evolution', 'p2_epochs': (40, 100)}


def _row(strategy, space, seed, acc, budget=12e6, madds=11e6):
    return {'strategy': strategy, 'space': space, 'seed': seed, 'test_acc': acc, 'budget': budget, 'madds': madds}


def _p1_rows(gain, seeds=(0, 1, 2, 3, 4)):
    rows = []
    for s in seeds:
        for a in S['strategies']:
            rows += [_row(a, 'manual', s, 0.90 + 0.001 * s, madds=11e6),
                     _row(a, 'learned', s, 0.90 + 0.001 * s + gain * (1 + 0.1 * s), madds=11.5e6)]
    return rows


def test_p1_met_when_all_five_pairs_win_by_more_than_the_gain():
    lines, p1 = p1_section(S, _p1_rows(0.004))
    text = '\n'.join(lines)
    assert '**met**' in text and 'smallest Wilcoxon p' not in text          # complete: no best-case line
    assert set(p1) == {'algorithms'} and set(p1['algorithms']) == {'darts', 'evolution'}
    v = p1['algorithms']['darts']
    assert set(v) == {'learned_mean', 'manual_mean', 'delta', 'p_value', 'learned_madds', 'manual_madds', 'seeds'}
    assert v['seeds'] == 5 and v['p_value'] == pytest.approx(2 / 32)        # exact two-sided, all 5 in favour
    assert v['delta'] == pytest.approx(0.004 * 1.2) and v['learned_madds'] == 11.5e6 and v['manual_madds'] == 11e6
    json.dumps(p1, allow_nan=False)


def test_p1_not_met_below_the_gain_even_when_significant():
    lines, p1 = p1_section(S, _p1_rows(0.001))                              # +0.12 points, p 0.0625
    assert p1['algorithms']['evolution']['p_value'] < 0.1 and '**NOT met**' in '\n'.join(lines)


def test_p1_decided_early_once_no_pending_seed_can_win_and_pending_shown_without_pairs():
    lines, p1 = p1_section(S, _p1_rows(-0.002, seeds=(0, 1)))
    text = '\n'.join(lines)
    assert '**NOT met**' in text and 'darts 0.312, evolution 0.312' in text   # 2 lost of 5: 10/32 at best
    assert 'For darts and evolution that is at or above 0.1' in text
    lines, p1 = p1_section(S, _p1_rows(0.002, seeds=(0,)))
    text = '\n'.join(lines)
    assert 'undecided' in text and p1['algorithms']['darts']['p_value'] is None   # null, not NaN, with one pair
    json.dumps(p1, allow_nan=False)
    lines, p1 = p1_section(S, [])
    assert '| darts | pending |' in '\n'.join(lines) and p1 == {'algorithms': {}}


def _p2(epochs, test, val):
    return {'strategy': 'evolution', 'seed': 0, 'retrain_epochs': epochs, 'madds': 24.1e6, 'params': 778e3,
            'sample': {'s1_b0': 'zero'}, 'test_acc': test, 'val_acc': val}


def test_p2_verdict_at_the_goals_edge_and_summary_shape(tmp_path):
    for acc, verdict in ((P2_GOAL, '**met**.'), (P2_GOAL - 0.0001, '**NOT met**.')):
        lines, summ = p2_section(S, tmp_path, [_p2(40, acc, 0.96)])     # held-out reached the goal: no more epochs
        assert lines[0].endswith(verdict)
        assert summ == {'best_test_acc': acc, 'madds': 24.1e6, 'params': 778e3, 'arch': '{"s1_b0": "zero"}'}


def test_p2_trains_longer_only_while_held_out_is_below_the_goal(tmp_path):
    lines, summ = p2_section(S, tmp_path, [_p2(40, 0.950, 0.952)])
    assert '**not met yet**' in lines[0] and 'for 100 epochs (pending)' in lines[0]
    assert summ['best_test_acc'] == 0.950                              # the finished rung, until the next ends
    lines, summ = p2_section(S, tmp_path, [_p2(40, 0.950, 0.952), _p2(100, 0.953, 0.954)])
    assert lines[0].endswith('**NOT met**.') and summ['best_test_acc'] == 0.953   # no rung left
    assert '40 epochs: 0.9500 test accuracy (0.9520 held-out); 100 epochs: 0.9530' in lines[0]
    lines, summ = p2_section(S, tmp_path, [_p2(40, 0.950, 0.952), _p2(100, 0.957, 0.954)])
    assert lines[0].endswith('**met**.') and summ['best_test_acc'] == 0.957
    # with its held-out history, a rung says what its last quarter of epochs added (after epoch 30: 0.929, 40: 0.952)
    history = [0.9 + i / 1000 for i in range(30)] + [0.94 + i / 750 for i in range(10)]
    rung = {**_p2(40, 0.950, 0.952), 'val_history': history}
    lines, _ = p2_section(S, tmp_path, [rung])
    assert '(0.9520 held-out, +2.30 points over epochs 31-40)' in lines[0]


def test_p2_ladder_ends_with_the_regularised_recipe_and_held_out_picks_the_network(tmp_path):
    from benchmarks._p2_report import p2_ladder, rung_of
    SR = {**S, 'p2_regularised': dict(epochs=100, flip=True, weight_decay=5e-4)}
    ladder = p2_ladder(SR)
    assert ladder == [{'epochs': 40}, {'epochs': 100}, {'epochs': 100, 'flip': True, 'weight_decay': 5e-4}]
    assert p2_ladder(S) == ladder[:2]
    assert [p2_tag(SR, r) for r in ladder] == ['p2_evolution_learned_40epochs', 'p2_evolution_learned_100epochs',
                                               'p2_evolution_learned_100epochs_flip_wd0.0005']
    reg = {**_p2(100, 0.956, 0.953), 'recipe': {'flip': True, 'weight_decay': 5e-4}}
    assert rung_of(reg) == ladder[2] and rung_of(_p2(100, 0.9, 0.9)) == ladder[1]
    base = [_p2(40, 0.9429, 0.9468), _p2(100, 0.9475, 0.9533)]
    lines, summ = p2_section(SR, tmp_path, base)                     # below the goal on held-out: one rung more
    assert '**not met yet**' in lines[0] and summ['best_test_acc'] == 0.9475
    assert 'from scratch for 100 epochs with horizontal flips and weight decay 0.0005 (pending)' in lines[0]
    # the regularised rung scores higher on the test split but lower on held-out: held-out picks, not the test split
    lines, summ = p2_section(SR, tmp_path, base + [reg])
    assert '100 epochs with horizontal flips and weight decay 0.0005: 0.9560 test accuracy (0.9530 held-out)' in lines[0]
    assert summ['best_test_acc'] == 0.9475 and '**NOT met**.' in lines[0]
    assert lines[0].endswith("P2's network is the retrain with the best held-out accuracy (100 epochs, 0.9475 test "
                             'accuracy).')
    lines, summ = p2_section(SR, tmp_path, base + [{**reg, 'val_acc': 0.9561}])
    assert lines[0].endswith('**met**.') and summ['best_test_acc'] == 0.956


def test_p2_pending_line_names_the_unit_and_its_progress(tmp_path):
    lines, summ = p2_section(S, tmp_path, [])
    assert summ is None and 'pending' in lines[0] and 'trained 40 epochs' in lines[0]
    assert 'retrain has run' not in lines[0]                            # nothing started yet
    assert p2_tag(S, 40) == 'p2_evolution_learned_40epochs'


def test_pending_line_names_folders_and_truncates():
    line = pending_line([f'/w/p1_darts_learned_seed{i}/result.json' for i in range(13)] + ['/w/edf_learned (3/40)'])
    assert line.startswith('\nPending (14 units not yet run): p1_darts_learned_seed0, ')
    assert line.endswith('p1_darts_learned_seed11 ...') and 'edf_learned' not in line


def test_pending_line_estimates_the_p1_units_from_finished_ones_of_the_same_algorithm_and_budget():
    done = [dict(_row('darts', 'manual', 0, 0.9), search_wall_time_s=1800, retrain_wall_time_s=3600),
            dict(_row('darts', 'learned', 0, 0.9), search_wall_time_s=3600, retrain_wall_time_s=3600),
            dict(_row('evolution', 'manual', 0, 0.9), search_wall_time_s=600, retrain_wall_time_s=3000),
            dict(_row('evolution', 'manual', 1, 0.9, budget=7e6), search_wall_time_s=1, retrain_wall_time_s=1),
            _row('darts', 'manual', 1, 0.9)]                       # an old result without wall times
    pending = ['/w/p1_darts_learned_seed3/result.json', '/w/p1_evolution_manual_seed3/result.json',
               '/w/p2_evolution_learned_100epochs/result.json', '/w/edf_learned (3/40)']
    hours, n, per = pending_hours(pending, done, 12e6)
    assert per == pytest.approx({'darts': 1.75, 'evolution': 1.0}) and n == 2 and hours == pytest.approx(2.75)
    line = pending_line(pending, done, 12e6)
    assert line.startswith('\nPending (4 units not yet run; the 2 P1 units among them should take about 3 h, at the '
                           'mean wall time (search and retrain) of the units finished at this budget (darts 1.8 h, '
                           'evolution 1.0 h per unit)): ')
    assert pending_line(pending[2:], done, 12e6).startswith('\nPending (2 units not yet run): ')
    assert pending_line(pending[:1], done, 12e6).startswith('\nPending (1 unit not yet run; all are P1 units, and they '
                                                          'should take about 2 h, ')


def test_convergence_first_iteration_of_a_stable_run():
    hist = [{'iteration': i, 'stable_iterations': s} for i, s in enumerate([0, 1, 0, 1, 2, 3, 4])]
    # iteration 5's sets equal those of 4, 3 and 2 (2 itself differs from 1): stable from 2 on
    assert convergence(hist) == 2 and convergence(hist, stable_for=5) is None


def _history(stable, churn, phase):
    """An evolution's history.jsonl records: two groups of top-3 (6 slots; churn split over the groups)."""
    return [{'iteration': i, 'stable_iterations': s, 'churn/a': c - c // 2, 'churn/b': c // 2,
             'warmup': ph == 'w', 'final': ph == 'f'} for i, (s, c, ph) in enumerate(zip(stable, churn, phase))]


def test_side_questions_pair_by_seed_and_budget(tmp_path):
    #                               stable iterations, churn, phase (warm-up, main, finals)
    hists = {'default': _history([0, 0, 1, 2, 3], [6, 3, 1, 0, 0], 'wmmmf'),
             'none': _history([0, 1, 2, 0], [6, 0, 0, 3], 'wmmf')}
    for ref, h in hists.items():
        d = tmp_path / f'evolve_ref-{ref}'
        d.mkdir()
        d.joinpath('history.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in h))
    assert churn_shares(hists['default']) == [1, 0.5, 1 / 6, 0, 0] and settled(hists['default']) == 2
    assert settled(hists['none']) is None                                 # the last iteration churns 50%
    rows = [_row('darts', 'learned', 0, 0.92), _row('darts', 'learned-no-ref', 0, 0.91),
            _row('darts', 'learned', 1, 0.93), _row('darts', 'learned-no-ref', 1, 0.90),
            _row('darts', 'learned-no-ref', 2, 0.10),                          # no learned pair: left out
            _row('darts', 'learned-small', 0, 0.88, budget=7e6, madds=6.5e6)]
    png = tmp_path / 'convergence.png'
    text = '\n'.join(side_lines(S, tmp_path, rows, png))
    assert 'with the reference from iteration 1, without it never in 4 iterations' in text
    # main phase: iterations 1-3 (mean of 50%, 17%, 0%) against 1-2 (0%, 0%)
    assert ('stays at or below 25% from iteration 2 with the reference and never in 4 iterations without it, mean over '
            'the main phase 22% vs 0%') in text
    assert png.stat().st_size > 0
    assert ('with − without: +2.00 points (2 pairs: seed 0 0.9200 vs 0.9100, seed 1 0.9300 vs 0.9000; Wilcoxon p '
            '0.500)') in text
    assert ('| large | 0.9250 (11.00 M, 2 of 2 seeds) | pending |' in text and
            '| small | pending | 0.8800 (6.50 M, 1 of 2 seeds) |' in text)
    # no pair at either budget yet
    assert 'searched at 7 M pending; searched at 12 M pending.' in text
    # the small budget paired by seed (seed 1 has no partner at that budget and is left out)
    spec = rows + [_row('darts', 'learned', 0, 0.87, budget=7e6, madds=6.6e6),
                   _row('darts', 'learned-small', 1, 0.89, budget=7e6, madds=6.4e6),
                   _row('darts', 'learned-small', 1, 0.95, budget=12e6)]
    text = '\n'.join(side_lines(S, tmp_path, spec))
    assert ('searched at 7 M +1.00 points (1 pair: seed 0 0.8800 vs 0.8700; a paired test needs two); searched at '
            '12 M -2.00 points (1 pair: seed 1 0.9300 vs 0.9500; a paired test needs two).') in text
    assert 'The two spaces share' not in text
    # with the spaces: how far the one learned at the smaller budget moved (here: cut to each group's first cell)
    import dataclasses

    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.skeleton import Skeleton
    from benchmarks._anatomy import budget_contrast
    big = manual_space(Skeleton.preset('tiny-8'))
    small = dataclasses.replace(big, groups={g: cs[:1] for g, cs in big.groups.items()})
    c = budget_contrast(big, small)
    text = '\n'.join(side_lines(S, tmp_path, spec, spaces={'learned': big, 'learned-small': small}))
    assert (f'The two spaces share {len(big.groups)} of {c["cells"]} cells ({c["shared_evolved"]} of them evolved, '
            'the others the reference). Networks drawn uniformly from each (mean MAdds [10th, 90th percentile]): '
            f'learned at 7 M {c["small"]["mean"] / 1e6:.1f} M') in text
    assert f'learned at 12 M {c["large"]["mean"] / 1e6:.1f} M' in text
    # one pair: its figures, and no p-value (a paired test needs two)
    text = '\n'.join(side_lines(S, tmp_path, rows[:2]))
    assert 'with − without: +1.00 points (1 pair: seed 0 0.9200 vs 0.9100; a paired test needs two)' in text
    assert 'nan' not in text


def test_p2_progress_of_the_longer_retrain_read_from_its_checkpoint(tmp_path):
    import torch
    from autospace_nni.retrain import _save_epoch_state
    d = tmp_path / p2_tag(S, 100)
    d.mkdir()
    d.joinpath('search.json').write_text(json.dumps({'madds': 24.1e6, 'params': 778e3}))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = [{'epoch': e, 'train_loss': 1.0, 'val_acc': 0.90 + e / 100} for e in range(7)]
    _save_epoch_state(d / 'retrain.ckpt', model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100),
                      torch.Generator(), {}, history, 7200.0)
    lines, _ = p2_section(S, tmp_path, [_p2(40, 0.950, 0.952)])
    assert ('(pending; the search is done (winner 24.10 M MAdds, 778 k params) and its retrain has run 7 of 100 '
            'epochs (2.0 h; held-out accuracy after epoch 2: 0.9100, 3: 0.9200') in lines[0]
    assert lines[0].endswith('7: 0.9600)).')
    # beside a finished rung of as many epochs (the same schedule), its held-out accuracy at the same epochs; a rung
    # of 40 epochs (another schedule) is not compared
    SR = {**S, 'p2_regularised': dict(epochs=100, flip=True, weight_decay=5e-4)}
    d.rename(tmp_path / p2_tag(SR, p2_ladder(SR)[2]))
    base = {**_p2(100, 0.9475, 0.9533), 'val_history': [0.8 + e / 1000 for e in range(100)]}
    lines, _ = p2_section(SR, tmp_path, [{**_p2(40, 0.950, 0.952), 'val_history': [0.5] * 40}, base])
    assert lines[0].endswith('7: 0.9600; after the same epochs, the finished retrain of 100 epochs had 0.8010, '
                             '0.8020, 0.8030, 0.8040, 0.8050, 0.8060)).')


def test_p2_curves_plot_draws_finished_rungs_and_the_one_training(tmp_path):
    import matplotlib.image
    import torch
    from autospace_nni.retrain import _save_epoch_state
    from benchmarks._p2_report import p2_curves_plot
    from benchmarks._space_report import report
    SR = {**S, 'p2_regularised': dict(epochs=100, flip=True, weight_decay=5e-4)}
    png = tmp_path / 'p2.png'
    assert not p2_curves_plot(SR, tmp_path, [], png) and not png.exists()       # nothing trained yet
    assert not p2_curves_plot(SR, tmp_path, [_p2(40, 0.95, 0.952)], png)       # a record without its history
    base = [{**_p2(e, 0.95, 0.952), 'val_history': [0.9] * e} for e in (40, 100)]
    assert p2_curves_plot(SR, tmp_path, base, png) == ['40 epochs', '100 epochs']
    assert matplotlib.image.imread(png).shape[1] > 500
    # the regularised rung's checkpoint makes a third curve, while it trains
    d = tmp_path / p2_tag(SR, p2_ladder(SR)[2])
    d.mkdir()
    d.joinpath('search.json').write_text(json.dumps({'madds': 24.1e6, 'params': 778e3}))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _save_epoch_state(d / 'retrain.ckpt', model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100),
                      torch.Generator(), {}, [{'epoch': 0, 'train_loss': 1.0, 'val_acc': 0.5}], 60.0)
    from benchmarks._p2_report import _held_out_so_far
    assert _held_out_so_far(SR, tmp_path, p2_ladder(SR)[2]) == [0.5]
    assert _held_out_so_far(SR, tmp_path, p2_ladder(SR)[1]) == []
    assert p2_curves_plot(SR, tmp_path, base, png)[-1] == ('100 epochs with horizontal flips and weight decay 0.0005 '
                                                          '(training)')
    assert p2_curves_plot(SR, tmp_path, base[:1], png) == ['40 epochs']      # not the next rung: not drawn
    from benchmarks._p2_report import next_rung
    reg = {**_p2(100, 0.95, 0.952), 'recipe': {'flip': True, 'weight_decay': 5e-4}}
    assert [next_rung(SR, r) for r in ([], base[:1], base, base + [reg])] == [*p2_ladder(SR), None]
    # the report links the plot it wrote, after P2's line
    text, _ = report('cpu', {**SR, 'search_limit': None, 'retrain_epochs': 10}, tmp_path, {}, [], {}, base, [],
                     tmp_path, tmp_path)
    assert '![P2: held-out accuracy per epoch](space_quality_cpu_p2.png)' in text
    assert (tmp_path / 'space_quality_cpu_p2.png').exists()


def test_mean_error_gap_known_answers():
    from benchmarks._space_report import mean_error_gap
    gap, lo, hi = mean_error_gap([0.10] * 8, [0.12] * 8, boot=200)
    assert gap == pytest.approx(-0.02) and lo == pytest.approx(-0.02) and hi == pytest.approx(-0.02)  # no spread
    a, b = [0.10, 0.11, 0.12, 0.13], [0.11, 0.12, 0.13, 0.14]
    gap, lo, hi = mean_error_gap(a, b, boot=500)
    assert gap == pytest.approx(-0.01) and lo < -0.01 < hi and lo > -0.05 and hi < 0.03
    assert mean_error_gap(a, b, boot=500) == (gap, lo, hi)                                # seeded: repeatable


def _edf(folder, space, errors):
    folder.mkdir()
    (folder / 'design_space.jsonl').write_text(''.join(
        json.dumps({'index': i, 'space': space, 'sample': {'b0': 'e6_relu6:0-1=dw3x3', 'b1': 'zero' if i % 2 else
                                                           'e3_relu6:0-1=dw5x5'},
                    'madds': 11e6 + i, 'params': 1e5, 'error': e}) + '\n' for i, e in enumerate(errors)))
    return folder


def test_edf_section_compares_each_learned_space_with_manual_at_equal_n(tmp_path):
    from benchmarks._space_report import edf_section
    rs = np.random.RandomState(0)
    dirs = {'learned': _edf(tmp_path / 'l', 'learned', 0.13 + 0.002 * rs.randn(12)),
            'manual': _edf(tmp_path / 'm', 'manual', 0.12 + 0.002 * rs.randn(12)),
            # still growing: 6 networks, clearly better than the manual space's first 6
            'learned-1edge': _edf(tmp_path / 'o', 'learned-1edge', 0.10 + 0.002 * rs.randn(6))}
    text = '\n'.join(edf_section({'boot': 400}, dirs, tmp_path / 'edf.png'))
    assert (tmp_path / 'edf.png').exists()
    assert '| learned | 12 |' in text and '| manual | 12 |' in text and '| learned-1edge | 6 |' in text
    assert 'learned − manual (12 networks each)' in text
    assert 'the learned EDF lies left of the manual one outside the bands: **no**' in text
    assert 'learned-1edge − manual (6 networks each)' in text
    assert 'the learned-1edge EDF lies left of the manual one outside the bands: **yes**' in text
    # a redesign is also set against the default learned space, at its own n: about 0.10 − 0.13
    from autospace_nni.design_space import load_samples
    from benchmarks._space_report import mean_error_gap
    errors = {n: [r['error'] for r in load_samples(d)] for n, d in dirs.items()}
    gap, lo, hi = mean_error_gap(errors['learned-1edge'], errors['learned'][:6], 400)
    assert -0.04 < lo < gap < hi < -0.02
    assert f'Against the default `learned` space (6 each): {gap:+.4f}, 90% interval [{lo:+.4f}, {hi:+.4f}].' in text
    assert text.count('Against the default `learned` space') == 1     # not for 'learned' itself
    assert text.count('![error EDFs]') == 1


def test_p1_section_of_the_redesign_pairs_with_the_same_manual_winners():
    rows = _p1_rows(-0.002, seeds=(0, 1))                   # 'learned' loses both pairs
    rows += [dict(r, space='learned-1edge', test_acc=r['test_acc'] + 0.005) for r in rows if r['space'] == 'manual']
    lines, p1 = p1_section(S, rows, learned='learned-1edge')
    text = '\n'.join(lines)
    assert '| algorithm | learned-1edge (mean test acc) |' in text and 'Goal P1 for `learned-1edge`' in text
    v = p1['algorithms']['darts']
    assert v['delta'] == pytest.approx(0.005) and v['seeds'] == 2 and v['manual_mean'] == pytest.approx(0.9005)
    assert 'undecided' in text                               # 2 won of 5: the 3 pending may still make p < 0.1
    assert '**NOT met**' in '\n'.join(p1_section(S, rows)[0])   # and the default space's verdict is its own


def test_edf_screen_needs_a_complete_edf_right_of_the_manual_one_outside_the_bands(tmp_path):
    from benchmarks._space_report import edf_screened_out
    rs = np.random.RandomState(1)
    dirs = {'manual': _edf(tmp_path / 'm', 'manual', 0.12 + 0.002 * rs.randn(12)),
            'worse': _edf(tmp_path / 'w', 'worse', 0.13 + 0.002 * rs.randn(12)),        # clearly right of manual
            'close': _edf(tmp_path / 'c', 'close', 0.12 + 0.002 * rs.randn(12)),        # within the bands
            'short': _edf(tmp_path / 's', 'short', 0.13 + 0.002 * rs.randn(6))}         # worse, not complete
    S12 = {'boot': 400, 'edf_n': 12}
    assert edf_screened_out(S12, dirs, 'worse') and not edf_screened_out(S12, dirs, 'close')
    assert not edf_screened_out(S12, dirs, 'short') and not edf_screened_out(S12, dirs, 'absent')
    assert not edf_screened_out(S12, {'worse': dirs['worse']}, 'worse')              # no manual EDF: no screen
