"""What space_quality.py says of the spaces' make-up and of the estimator's view of multi-edge cells
(benchmarks/_anatomy.py), on known answers: tiny hand-made spaces, winners and a fitness-quality cache."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from autospace_nni.cells.genome import Cell
from autospace_nni.space.learned import LearnedCell, manual_space
from autospace_nni.space.skeleton import Skeleton
from benchmarks._anatomy import estimator_bias, kind, space_makeup, why_lines, winner_makeup

MB, MB5, MULTI, POOL = 'e6_relu6:0-1=dw3x3', 'e3_relu6:0-1=dw5x5', 'e1_relu6:0-1=dw3x3,0-2=skip,1-2=conv1x1', \
    'e1_relu6:0-1=avg_pool3x3'


def test_kind_tells_mbconv_multi_edge_and_other_cells():
    assert [kind(c) for c in (MB, MB5, MULTI, POOL, 'e6_relu6:0-1=sep_dw1x3_3x1', 'e6_relu6:0-1=dil_dw3x3')] == \
        ['mbconv', 'mbconv', 'multi', 'other', 'mbconv', 'mbconv']
    assert kind(Cell.parse(MULTI)) == 'multi'          # a Cell or its text


def _space(groups):
    # space_makeup reads a space's groups alone
    return SimpleNamespace(groups={g: [LearnedCell(cell=Cell.parse(c), fitness=1.0, reference=r == 0)
                                       for r, c in enumerate(cs)] for g, cs in groups.items()})


def test_space_and_winner_makeup_known_answers():
    m = space_makeup(_space({'a': [MB, MULTI], 'b': [MULTI, MULTI, POOL]}))
    assert m == {'cells': 5, 'multi_edge': pytest.approx(3 / 5)}      # a reference cell is a choice: counted
    manual = space_makeup(manual_space(Skeleton.preset('tiny-8')))     # ProxylessNAS's MBConv candidates
    assert manual['cells'] > 0 and manual['multi_edge'] == 0.0
    rows = [{'sample': {'b0': MULTI, 'b1': 'zero', 'b2': MB, 'b3': 'zero'}, 'params': 100e3},
            {'sample': {'b0': MB, 'b1': MB, 'b2': MULTI, 'b3': 'zero'}, 'params': 300e3}]
    w = winner_makeup(rows)
    # 1.5 blocks skipped on average; of the 5 blocks kept, 2 are multi-edge
    assert w == {'winners': 2, 'blocks': 4, 'skipped': 1.5, 'multi_edge': pytest.approx(2 / 5), 'params': 200e3}


def _fq_cache(tmp_path, truth, estimates):
    (tmp_path / 'report.json').write_text(json.dumps({'truth': truth}))
    (tmp_path / 'summary.json').write_text(json.dumps({'default': 'paired-eval'}))
    for seed, est in enumerate(estimates):
        d = tmp_path / 'estimators' / f'paired-eval_seed{seed}'
        d.mkdir(parents=True)
        (d / 'result.json').write_text(json.dumps({'estimate': est}))
    other = tmp_path / 'estimators' / 'alpha-sum_seed0'          # another estimator: not the default, not read
    other.mkdir()
    (other / 'result.json').write_text(json.dumps({'estimate': {c: 9.0 for c in truth}}))
    return tmp_path


def test_estimator_bias_averages_seeds_per_kind_and_leaves_other_cells_out(tmp_path):
    truth = {MB: 0.84, MB5: 0.82, MULTI: 0.79, POOL: 0.50}
    cache = _fq_cache(tmp_path, truth, [{MB: 1.0, MB5: 0.98, MULTI: 1.03, POOL: 0.9},
                                        {MB: 1.0, MB5: 1.00, MULTI: 1.01, POOL: 0.9}])
    b = estimator_bias(cache)
    assert b['estimator'] == 'paired-eval' and b['seeds'] == 2
    assert b['mbconv'] == {'n': 2, 'truth': pytest.approx(0.83), 'score': pytest.approx(0.995)}
    assert {k: v for k, v in b['multi'].items() if k != 'tau'} == {'n': 1, 'truth': pytest.approx(0.79),
                                                                    'score': pytest.approx(1.02)}
    # one-edge cells (MB, MB5, POOL): truth order MB > MB5 > POOL, score order MB > MB5 > POOL: τ = 1
    assert b['single']['n'] == 3 and b['single']['tau']['tau'] == pytest.approx(1.0)
    assert math.isnan(b['multi']['tau']['tau'])                      # one multi-edge cell: no ranking
    text = '\n'.join(why_lines({}, {}, b))
    assert 'rates multi-edge cells as high or higher' in text and '4.0 points worse' in text


def test_rank_agreement_known_answers():
    from benchmarks._anatomy import rank_agreement
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])['tau'] == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [40, 30, 20, 10])['tau'] == pytest.approx(-1.0)
    r = rank_agreement([1, 2, 3, 4], [20, 10, 30, 40])           # one discordant pair of 6: (5 - 1) / 6
    assert r['tau'] == pytest.approx(4 / 6) and 0 < r['p'] <= 1
    assert math.isnan(rank_agreement([1, 2], [1, 2])['tau']) and math.isnan(rank_agreement([1, 1, 1], [1, 2, 3])['tau'])


def test_estimator_bias_is_none_without_a_cache(tmp_path):
    assert estimator_bias(tmp_path) is None
    assert why_lines({}, {'learned': []}, None) == []


def test_multi_edge_vs_error_known_answers():
    from benchmarks._anatomy import multi_edge_vs_error

    def net(cells, error):
        return {'sample': {f'b{i}': c for i, c in enumerate(cells)}, 'error': error}
    # error rises with the share of multi-edge blocks (0, 1/3, 1/2, 1): ρ = +1
    up = [net([MB, MB, MB], 0.10), net([MULTI, MB, MB], 0.12), net([MULTI, MB, 'zero'], 0.15),
          net([MULTI, 'zero', MULTI], 0.20)]
    r = multi_edge_vs_error(up)
    assert r['n'] == 4 and r['rho'] == pytest.approx(1.0)
    r = multi_edge_vs_error([dict(s, error=-s['error']) for s in up])
    assert r['rho'] == pytest.approx(-1.0)
    # no spread in the share: no correlation to speak of
    flat = multi_edge_vs_error([net([MB], 0.1), net([MB5], 0.2), net([POOL], 0.3)])
    assert flat['n'] == 3 and math.isnan(flat['rho']) and math.isnan(flat['p'])


def _net(cells, error):
    return {'sample': {f'b{i}': c for i, c in enumerate(cells)}, 'error': error}


def test_skips_vs_error_known_answers():
    from benchmarks._anatomy import skips_vs_error
    # the more blocks skipped (0, 1, 2), the lower the error: ρ = −1
    nets = [_net([MB, MB, MB], 0.20), _net([MB, 'zero', MB], 0.15), _net(['zero', MB, 'zero'], 0.10)]
    assert skips_vs_error(nets)['rho'] == pytest.approx(-1.0)
    assert math.isnan(skips_vs_error([_net([MB], 0.1), _net([MB5], 0.2), _net([POOL], 0.3)])['rho'])


def test_other_vs_error_counts_only_non_depthwise_single_edges():
    from benchmarks._anatomy import other_vs_error
    # shares of pools among kept blocks 0, 1/2, 1 (the skipped block and the multi-edge cell are not 'other')
    nets = [_net([MB, MULTI, 'zero'], 0.10), _net([POOL, MB, 'zero'], 0.12), _net([POOL, 'zero', 'zero'], 0.15)]
    assert other_vs_error(nets)['rho'] == pytest.approx(1.0)
    assert math.isnan(other_vs_error([_net([MB], 0.1), _net([MULTI], 0.2), _net([MB5], 0.3)])['rho'])


def test_cell_effects_finds_the_one_harmful_cell_and_corrects_for_many_tests():
    from scipy.stats import mannwhitneyu

    from benchmarks._anatomy import cell_effects, edf_why_lines
    rs = np.random.RandomState(0)
    # 30 networks of 3 blocks; block b1 holds MULTI in 10 of them, and those are 2 points worse; the rest is noise
    nets = []
    for i in range(30):
        bad = i % 3 == 0
        nets.append(_net([rs.choice([MB, MB5]), MULTI if bad else rs.choice([MB, POOL]), rs.choice([MB, 'zero'])],
                         0.12 + 0.02 * bad + 0.002 * rs.randn()))
    e = cell_effects(nets)
    # every choice held by 3..27 networks is tested once: b0 two, b1 three, b2 two
    assert e['tests'] == 7
    # the harmful cell comes first; the only others found are its complements at b1 (the networks without it),
    # better, never a choice at the noise blocks b0, b2
    t = e['effects'][0]
    assert (t['block'], t['cell'], t['n']) == ('b1', MULTI, 10)
    assert all(o['block'] == 'b1' and o['delta'] < 0 for o in e['effects'][1:])
    assert t['delta'] == pytest.approx(0.02, abs=0.003)
    err = np.array([n['error'] for n in nets])
    has = np.array([n['sample']['b1'] == MULTI for n in nets])
    assert t['p'] == pytest.approx(mannwhitneyu(err[has], err[~has]).pvalue)
    assert t['p'] <= t['q'] <= min(1.0, t['p'] * e['tests'])   # BH: q between p and Bonferroni
    # a choice held by fewer than min_n networks is not tested at all
    from collections import Counter
    held = [k for b in ('b0', 'b1', 'b2') for k in Counter(n['sample'][b] for n in nets).values()]
    assert cell_effects(nets, min_n=11)['tests'] == sum(11 <= k <= 19 for k in held) < 7
    assert all(t['cell'] != MULTI for t in cell_effects(nets, min_n=11)['effects'])
    # pure noise: nothing survives the correction
    noise = [_net([rs.choice([MB, MB5]), rs.choice([MB, POOL, 'zero'])], 0.12 + 0.01 * rs.randn()) for _ in range(30)]
    assert cell_effects(noise)['effects'] == []
    text = edf_why_lines({'learned': nets, 'manual': noise})[0]
    assert f'`{MULTI}` at b1 (10 networks): +{100 * t["delta"]:.2f} points' in text
    assert 'of 7 single choices tested' in text
    assert 'none with q < 0.1' in text and 'none (no spread in the share)' in text


def _history(scores_by_iteration):
    return [{'iteration': i, **{f'scores/{g}': sc for g, sc in groups.items()}}
            for i, groups in enumerate(scores_by_iteration)]


def test_score_reliability_known_answers():
    from benchmarks._anatomy import score_reliability, scores_needed
    # two cells always scored the same within themselves, far apart between: perfectly reliable
    h = _history([{'g': {'a': 1.1, 'b': 0.9, 'ref': 1.0}}, {'g': {'a': 1.1, 'b': 0.9, 'ref': 1.0}}])
    r = score_reliability(h)
    assert r['cells'] == 2 and r['scores_per_cell'] == 2 and r['icc'] == pytest.approx(1.0)   # the reference left out
    assert r['sd_within'] == 0 and r['sd_between'] == pytest.approx(np.std([1.1, 0.9], ddof=1))
    # scores that swap between the cells: a cell's two scores agree less than two cells' do
    r = score_reliability(_history([{'g': {'a': 1.1, 'b': 0.9}}, {'g': {'a': 0.9, 'b': 1.1}}]))
    assert r['icc'] == pytest.approx(-1.0) and r['sd_between'] == 0
    # one-way ANOVA by hand, unequal counts: a = (1, 2, 3), b = (4, 6); a cell scored once and group h are apart
    h = _history([{'g': {'a': 1, 'b': 4, 'c': 9}, 'h': {'a': 5}}, {'g': {'a': 2, 'b': 6}}, {'g': {'a': 3}}])
    r = score_reliability(h)
    msb, msw, n0 = (3 * (2 - 3.2) ** 2 + 2 * (5 - 3.2) ** 2) / 1, (2 + 2) / 3, (5 - 13 / 5) / 1
    assert r['cells'] == 2 and r['icc'] == pytest.approx((msb - msw) / (msb + (n0 - 1) * msw))
    assert math.isnan(score_reliability(_history([{'g': {'a': 1.0}}]))['icc'])
    assert scores_needed(0.5) == pytest.approx(4.0) and scores_needed(0.0) == math.inf   # Spearman-Brown


def test_fitness_vs_error_reads_each_block_s_own_group_scores(tmp_path):
    import dataclasses

    from benchmarks._anatomy import cell_fitness, edf_why_lines, fitness_vs_error
    manual = manual_space(Skeleton.preset('tiny-8'))
    # a scored space: in every group the k-th MBConv cell scores 1 + k/10, except in the last group, which scores
    # them the other way round (so a block must be read against its own group's scores)
    groups = list(manual.groups)
    scored = dataclasses.replace(manual, groups={
        g: [dataclasses.replace(c, fitness=1 + (len(cs) - 1 - k if g == groups[-1] else k) / 10)
            for k, c in enumerate(cs)] for g, cs in manual.groups.items()})
    specs = scored.block_specs()
    fit = cell_fitness(scored)
    assert set(fit) == {s.label for s in specs}
    last = next(s for s in specs if s.group == groups[-1])
    names = [c.choice_name for c in scored.groups[groups[-1]]]
    assert fit[last.label][names[0]] == pytest.approx(1 + (len(names) - 1) / 10)
    # networks of k-th cells everywhere (zero where allowed in the third): mean fitness rises with k, but the error
    # falls with it, ρ = −1 (the fitness does its job); the skipped blocks do not count in the mean
    nets = []
    for k, err in zip(range(len(names)), (0.20, 0.18, 0.15, 0.14, 0.12, 0.10)):
        sample = {s.label: scored.groups[s.group][k].choice_name for s in specs}
        nets.append({'sample': sample, 'error': err})
    means = [np.mean([fit[b][c] for b, c in n['sample'].items()]) for n in nets]
    assert np.all(np.diff(means) > 0)
    assert fitness_vs_error(nets, scored)['rho'] == pytest.approx(-1.0)
    zeroed = [dict(n, sample={**n['sample'], **{s.label: 'zero' for s in specs if s.zero_allowed}}) for n in nets]
    assert fitness_vs_error(zeroed, scored)['rho'] == pytest.approx(-1.0)
    # the manual space's cells carry no score: no spread, no ρ, and the report says nothing of fitness for it
    assert math.isnan(fitness_vs_error(nets, manual)['rho'])
    text = edf_why_lines({'scored': nets, 'manual': nets}, {'scored': scored, 'manual': manual})[0]
    assert text.count("mean fitness (the evolution's scores) -1.00") == 1
    # the retest reads the fitness against the two runs' mean error, and bounds it over the whole EDF
    from benchmarks._anatomy import retest_lines, spearman_ci
    for folder, shift in (('edf_scored', 0.0), ('edf_scored_retest', 0.01)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'design_space.jsonl').write_text(
            ''.join(json.dumps(dict(n, error=n['error'] + shift)) + '\n' for n in nets[:5 if shift else 6]))
    text = retest_lines({'retest_spaces': ('scored',)}, tmp_path, {'scored': scored})[0]
    lo, hi = spearman_ci(-1.0, 6)
    assert "its first 5 networks" in text and "against the two runs' mean error: ρ -1.00" in text
    assert f'over the whole EDF (6 networks, one run each) that ρ is -1.00, 90% CI [{lo:+.2f}, {hi:+.2f}]' in text


def test_training_retest_pairs_by_architecture_and_knows_pure_noise():
    from benchmarks._anatomy import icc1, training_retest
    nets = [{'sample': {'b0': f'c{k}', 'b1': 'zero'}, 'error': err} for k, err in enumerate((0.10, 0.12, 0.15, 0.20))]
    # the same errors again, listed in another order and with one network the first run lacks: a perfect retest
    again = [dict(n) for n in reversed(nets)] + [{'sample': {'b0': 'other', 'b1': 'zero'}, 'error': 0.5}]
    r = training_retest(nets, again)
    assert r['n'] == 4 and r['icc'] == pytest.approx(1.0) and r['sd_within'] == 0
    assert r['ceiling'] == pytest.approx(1.0) and r['runs']['rho'] == pytest.approx(1.0) and 'fitness' not in r
    # each network's second run is another network's first: between-run agreement is what two networks share,
    # the one-way ICC is negative and no score can follow one run's error (ceiling 0)
    swapped = [dict(n, error=nets[(k + 2) % 4]['error']) for k, n in enumerate(nets)]
    r = training_retest(nets, swapped)
    assert r['icc'] < 0 and r['ceiling'] == 0
    # known ANOVA: true errors t plus ±d in the two runs: sd_within = d·√2, sd_between² = var(t) − d²
    t, d = np.array([0.10, 0.12, 0.15, 0.20]), 0.01
    r = icc1([[x + d, x - d] for x in t])
    assert r['sd_within'] == pytest.approx(d * np.sqrt(2))
    assert r['sd_between'] == pytest.approx(np.sqrt(np.var(t, ddof=1) - d ** 2))
    assert r['icc'] == pytest.approx((np.var(t, ddof=1) - d ** 2) / (np.var(t, ddof=1) + d ** 2))
    assert math.isnan(icc1([[0.1, 0.2]])['icc'])


def test_retest_lines_read_the_retest_folder_beside_its_edf(tmp_path):
    import json

    from benchmarks._anatomy import retest_lines
    nets = [{'sample': {'b0': f'c{k}'}, 'error': err} for k, err in enumerate((0.10, 0.12, 0.15, 0.20))]
    for folder, noise in (('edf_x', 0.0), ('edf_x_retest', 0.01)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'design_space.jsonl').write_text(
            ''.join(json.dumps(dict(n, error=n['error'] + noise)) + '\n' for n in nets))
    assert retest_lines({'retest_spaces': ('y',)}, tmp_path) == []        # no such retest: nothing said
    text = retest_lines({'retest_spaces': ('x',)}, tmp_path)[0]
    v = np.var([0.10, 0.12, 0.15, 0.20], ddof=1)      # runs 0.01 apart: ±0.005 around each network's own error
    assert f'`x`, its first 4 networks: ICC {(v - 0.005 ** 2) / (v + 0.005 ** 2):.2f}' in text and 'ρ between the runs +1.00' in text


def test_spearman_ci_known_answers():
    from scipy.stats import norm

    from benchmarks._anatomy import spearman_ci
    lo, hi = spearman_ci(0.0, 40)
    half = np.tanh(norm.ppf(0.95) * np.sqrt(1.06 / 37))
    assert lo == pytest.approx(-half) and hi == pytest.approx(half)       # symmetric around 0
    lo, hi = spearman_ci(0.6, 20)
    assert lo < 0.6 < hi and hi - 0.6 < 0.6 - lo                           # skewed towards 0, inside (-1, 1)
    assert spearman_ci(0.6, 200)[1] - spearman_ci(0.6, 200)[0] < hi - lo    # narrower with more pairs


def test_budget_contrast_of_a_space_cut_to_each_group_s_first_cell():
    import dataclasses

    from autospace_nni.budget import AnalyticCostProfiler
    from autospace_nni.search import cost_range
    from benchmarks._anatomy import budget_contrast
    manual = manual_space(Skeleton.preset('tiny-8'))
    cut = dataclasses.replace(manual, groups={g: cs[:1] for g, cs in manual.groups.items()})
    c = budget_contrast(manual, cut, n=50)
    assert (c['shared'], c['cells']) == (len(manual.groups), sum(len(cs) for cs in manual.groups.values()))
    # the manual space's cells are all choices, none the reference: each group's first cell is shared as evolved
    assert c['shared_evolved'] == len(manual.groups)
    # marking the cut space's cell as the reference in the full one leaves nothing evolved shared
    refd = dataclasses.replace(manual, groups={g: [dataclasses.replace(cs[0], reference=True), *cs[1:]]
                                               for g, cs in manual.groups.items()})
    assert budget_contrast(refd, cut, n=5)['shared_evolved'] == 0
    # the cut space's priciest network has the first cell at every block (the other choice, where a block may be
    # skipped, is 'zero'); the full space's is the priciest cell everywhere
    first = {s.label: manual.groups[s.group][0].choice_name for s in manual.block_specs()}
    assert c['small']['max'] == AnalyticCostProfiler(manual.skeleton).profile(first)
    assert c['large']['max'] == cost_range(manual)[1] > c['small']['max']
    for d in (c['small'], c['large']):
        assert d['p10'] <= d['mean'] <= d['p90'] <= d['max']
    # a space against itself: every cell shared, the same draws
    same = budget_contrast(manual, manual, n=50)
    assert same['shared'] == same['cells'] and same['small'] == same['large']
