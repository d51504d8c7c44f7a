"""The README's bullets (benchmarks/_headline.py) on made-up rows with known answers, and the markers they are
written between (benchmarks/_report.py's write_block)."""

import pytest

from benchmarks._headline import (WIDTH, diagnosis_words, headline, p1_bullet, p2_bullet, side_bullet,
                                  why_bullet)
from benchmarks._report import write_block
from benchmarks._p2_report import p2_ladder, p2_tag

S = {'budget': 12e6, 'spec_budget': 7e6, 'seeds': [0, 1, 2, 3, 4], 'strategies': ['darts', 'evolution'],
     'side_seeds': 2, 'p2_strategy': 'evolution', 'p2_epochs': (40, 100), 'boot': 200,
     'p2_regularised': {'epochs': 100, 'flip': True, 'weight_decay': 5e-4}}


def _row(strategy, space, seed, acc, budget=12e6, madds=11e6):
    return {'strategy': strategy, 'space': space, 'seed': seed, 'test_acc': acc, 'budget': budget, 'madds': madds}


def _p2(epochs, test, val, history=None):
    return {'strategy': 'evolution', 'seed': 0, 'retrain_epochs': epochs, 'madds': 24.1e6, 'params': 778e3,
            'sample': {'s1_b0': 'zero'}, 'test_acc': test, 'val_acc': val, 'val_history': history}


def test_p1_bullet_gives_each_algorithms_gap_wins_and_why_the_verdict_is_decided():
    rows = []
    for seed, (gap_d, gap_e) in enumerate(((-0.003, -0.001), (-0.001, 0.002))):
        rows += [_row('darts', 'manual', seed, 0.93), _row('darts', 'learned', seed, 0.93 + gap_d),
                 _row('evolution', 'manual', seed, 0.92), _row('evolution', 'learned', seed, 0.92 + gap_e)]
    text = p1_bullet(S, rows)
    assert 'hand-made one by ≥ 0.3 points, paired p < 0.1,' in text and 'B = 12 M): NOT met.**' in text
    assert ("DARTS's winners, learned − manual: −0.20 points (0.9280 vs 0.9300 test accuracy; 2 paired seeds, "
            "Wilcoxon p 0.500; the learned one ahead in 0)") in text
    assert "RegularizedEvolution's winners, learned − manual: +0.05 points" in text and 'ahead in 1)' in text
    # two of five DARTS pairs lost: its best reachable p is 10/32; one RegularizedEvolution pair: 4/32
    assert ('The smallest p the remaining seeds allow is 0.312 for DARTS, 0.125 for RegularizedEvolution: at or above '
            '0.1, so they cannot change the verdict.') in text
    won = [_row(a, s, 0, 0.93 + 0.004 * (s == 'learned')) for a in S['strategies'] for s in ('learned', 'manual')]
    text = p1_bullet(S, won)                                  # one pair each, both won: still open
    assert 'undecided: pairs still pending.**' in text and 'too few pairs for a test' in text
    assert 'smallest p' not in text


def test_p2_bullet_reports_the_best_rung_and_the_next_ones_progress(tmp_path):
    import torch

    from autospace_nni.retrain import _save_epoch_state
    assert p2_bullet(S, tmp_path, []).endswith('pending.**')
    base = _p2(100, 0.9475, 0.9533, [0.80 + e / 1000 for e in range(100)])
    rungs = [_p2(40, 0.9430, 0.9500, [0.5] * 40), base]
    text = p2_bullet(S, tmp_path, rungs)
    assert 'not met yet.** The best network so far reaches 0.9475 test accuracy (0.9533 held-out) at 24.10 M' in text
    assert text.endswith('(100 epochs with horizontal flips and weight decay 0.0005) has not started.')
    d = tmp_path / p2_tag(S, p2_ladder(S)[2])
    d.mkdir()
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = [{'epoch': e, 'train_loss': 1.0, 'val_acc': [0.70, 0.75, 0.72][e]} for e in range(3)]
    _save_epoch_state(d / 'retrain.ckpt', model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100),
                      torch.Generator(), {}, history, 60.0)
    text = p2_bullet(S, tmp_path, rungs)
    # the 100-epoch base rung is the best and has the same schedule: compared after epoch 3 (its 0.802)
    assert text.endswith('has run 3 of 100 epochs: 0.7200 held-out after the last, against 0.8020 for the best '
                         'network after the same epoch; its best so far is 0.7500. It replaces the network only if it '
                         'ends above 0.9533 held-out.')
    # a best rung of another schedule is not compared
    assert 'against' not in p2_bullet(S, tmp_path, [_p2(40, 0.9430, 0.9500, [0.5] * 40)])
    # held-out at the goal ends the ladder; the test split decides met / NOT met
    assert 'NOT met.**' in p2_bullet(S, tmp_path, [_p2(40, 0.9540, 0.9560)])
    assert ': met.**' in p2_bullet(S, tmp_path, [_p2(40, 0.9550, 0.9560)])


def test_p2_bullet_once_the_ladder_ends_says_what_its_last_rung_reached_and_changed(tmp_path):
    import json
    reg = {**_p2(100, 0.9440, 0.9500), 'recipe': {'flip': True, 'weight_decay': 5e-4}}
    rungs = [_p2(40, 0.9430, 0.9500), _p2(100, 0.9475, 0.9533), reg]
    text = p2_bullet(S, tmp_path, rungs)
    assert 'NOT met.** The best network reaches 0.9475 test accuracy (0.9533 held-out)' in text
    assert text.endswith('The last retrain tried (100 epochs with horizontal flips and weight decay 0.0005) ended at '
                         '0.9500 held-out (0.9440 test accuracy), below 0.9533, so it was not picked.')
    # both examined: what the recipe changed, beside the best network, in the base's 3 weakest classes (b, c, a)
    base_cm = [[10, 0, 0, 0], [2, 8, 0, 0], [0, 0, 9, 1], [0, 0, 0, 10]]
    reg_cm = [[10, 0, 0, 0], [1, 9, 0, 0], [0, 0, 9, 1], [0, 1, 0, 9]]
    for rung, train, cm in ((100, 0.99, base_cm), (p2_ladder(S)[2], 0.98, reg_cm)):
        (tmp_path / p2_tag(S, rung)).mkdir()
        (tmp_path / p2_tag(S, rung) / 'diagnosis.json').write_text(json.dumps(
            {'classes': ['a', 'b', 'c', 'd'], 'train_acc': train, 'test_confusion': cm}))
    assert p2_bullet(S, tmp_path, rungs).endswith(
        'so it was not picked. Beside the best network, it classifies 98.00% of its training images (against 99.00%), '
        'and b 0.900 (against 0.800), c 0.900 (against 0.900), a 1.000 (against 1.000); the other class averages '
        '0.900 (against 1.000).')
    # picked by its held-out accuracy but short of the goal on the test split: compared with the rung before
    won = {**reg, 'val_acc': 0.9540}
    text = p2_bullet(S, tmp_path, [*rungs[:2], won])
    assert 'NOT met.** The best network reaches 0.9440 test accuracy (0.9540 held-out)' in text
    assert ('ended at 0.9540 held-out and was picked; the one before (100 epochs) had 0.9533. Beside the one before, '
            'it classifies 98.00%') in text


def test_side_bullet_pairs_by_seed_and_budget():
    rows = [_row('darts', 'learned', 0, 0.92), _row('darts', 'learned-no-ref', 0, 0.93),
            _row('darts', 'learned', 1, 0.915), _row('darts', 'learned-no-ref', 1, 0.90),
            _row('darts', 'learned-no-ref', 2, 0.5),                                  # no partner: left out
            _row('darts', 'learned-small', 0, 0.88, budget=7e6), _row('darts', 'learned', 0, 0.89, budget=7e6)]
    text = side_bullet(S, rows)
    assert 'with the reference minus without it: +0.25 points (2 paired seeds, Wilcoxon p 1.000;' in text
    assert 'the first ahead in 1)' in text
    assert 'at 7 M −1.00 points (1 paired seed, too few pairs for a test; the first ahead in 0); at 12 M pending.' \
        in text


def test_headline_wraps_to_the_readme_width_and_skips_what_has_no_figures(tmp_path):
    rows = [_row('darts', 'manual', 0, 0.93), _row('darts', 'learned', 0, 0.92)]
    text = headline(S, tmp_path, rows, {}, [])
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    assert [line[:4] for line in lines if line.startswith('- ')] == ['- **'] * 3     # P1, P2, the side questions
    assert all(line.startswith(('- ', '  ')) for line in lines)
    assert 'Random networks' not in text and 'Why' not in text    # no EDF, no spaces: no bullet


def test_write_block_replaces_only_between_its_markers(tmp_path):
    f = tmp_path / 'README.md'
    head, tail = '# x\n\nbefore\n', '\nafter <!-- b: end -->\n'
    f.write_text(head + '<!-- b: begin (do not edit) -->\nold\nlines\n<!-- b: end -->' + tail)
    assert write_block(f, 'b', 'new\n')
    assert f.read_text() == head + '<!-- b: begin (do not edit) -->\nnew\n<!-- b: end -->' + tail
    assert write_block(f, 'b', 'newer') and 'newer\n<!-- b: end -->' in f.read_text()     # again: idempotent shape
    before = f.read_text()
    assert not write_block(f, 'c', 'x') and f.read_text() == before                      # no markers: untouched
    with pytest.raises(FileNotFoundError):
        write_block(tmp_path / 'missing.md', 'b', 'x')


def test_readme_block_holds_the_cached_summarys_figures():
    """The README's bullets are the report's: each P1 mean and P2's best accuracy in the committed cache's
    summary.json appears there (a hand edit or a stale block would drop them)."""
    import json
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root / 'README.md').read_text()
    block = re.search(r'<!-- space_quality cpu: begin[^\n]*-->\n(.*?)<!-- space_quality cpu: end -->', readme, re.S)
    assert block, 'README.md lost its space_quality cpu markers'
    text = ' '.join(block.group(1).split())          # the bullets are wrapped
    summary = json.loads((root / 'docs/results/space_quality_cpu/summary.json').read_text())
    for v in summary['p1']['algorithms'].values():
        assert f'{v["learned_mean"]:.4f} vs {v["manual_mean"]:.4f}' in text
    assert f'{summary["p2"]["best_test_acc"]:.4f} test accuracy' in text


@pytest.mark.parametrize('spread, words', [(0.0, 'tell cells apart: two scores of one cell agree with an intraclass '
                                                  'correlation of 1.00 (3 cells scored 2.0 times on average).'),
                                           (0.5, 'are mostly noise')])
def test_why_bullet_says_noise_only_when_the_scores_disagree(tmp_path, spread, words):
    import json

    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.skeleton import Skeleton
    d = tmp_path / 'evolve_ref-default'
    d.mkdir()
    # three cells, each scored twice: the same score twice (ICC 1), or two scores further apart than the cells
    recs = [{'scores/g': {c: base + spread * (-1) ** (i + k) for k, (c, base) in enumerate(
        (('a', 0.9), ('b', 1.05), ('c', 1.1)))}} for i in range(2)]
    d.joinpath('history.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    text = why_bullet(tmp_path, {'learned': manual_space(Skeleton.preset('tiny-8'))}, None)
    assert words in text and 'multi-edge graphs' in text and 'estimator scores them' not in text
    assert why_bullet(tmp_path, {}, None) == ''


def test_diagnosis_words_known_confusion():
    # three classes of 10 test images: class 0 right 10, class 1 right 8 (2 as 2), class 2 right 5 (5 as 1)
    d = {'classes': ['a', 'b', 'c'], 'train_acc': 0.99746,
         'test_confusion': [[10, 0, 0], [0, 8, 2], [0, 5, 5]]}
    assert diagnosis_words(d, worst=2) == ('It classifies 99.75% of its training images (without augmentation), so '
                                           'what limits it is generalisation; 100% of its 7 test errors fall in 2 '
                                           'classes (c, b).')
    assert 'limits it is its fit; 71% of its 7 test errors fall in 1 class (c)' in diagnosis_words(
        {**d, 'train_acc': 0.9}, worst=1)
