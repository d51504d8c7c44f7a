"""The decision rule of space_quality.py's goal P1 (benchmarks/_paired.py), on known answers: the exact two-sided
Wilcoxon signed-rank test on n pairs cannot go below 2 / 2**n, and one lost pair out of 5 already keeps it above
the goal's 0.1."""

import pytest

from benchmarks._paired import best_case_p, p1_deltas

S = {'seeds': [0, 1, 2, 3, 4], 'strategies': ['darts', 'evolution']}


def test_best_case_p_known_answers():
    assert best_case_p([], 5) == pytest.approx(2 / 32)                   # nothing run: all 5 may still win
    assert best_case_p([0.004, 0.001, 0.002, 0.003, 0.005], 0) == pytest.approx(2 / 32)
    assert best_case_p([-0.001], 4) == pytest.approx(4 / 32)             # one loss (rank 1): W- = 1, p = 2 * 2/32
    assert best_case_p([-0.0027, -0.0007], 3) == pytest.approx(10 / 32)  # this cpu run after 2 seeds
    assert best_case_p([], 2) == pytest.approx(0.5)                      # 2 pairs can never reach p < 0.1
    # a pending pair's best case outranks the finished ones, whatever their size
    assert best_case_p([0.5, -0.0001], 3) == best_case_p([0.0002, -0.0001], 3)


def _row(strategy, space, seed, acc, budget=12e6):
    return {'strategy': strategy, 'space': space, 'seed': seed, 'test_acc': acc, 'budget': budget}


def test_p1_deltas_pairs_by_seed_and_budget():
    rows = [_row('darts', 'learned', 0, 0.90), _row('darts', 'manual', 0, 0.92),
            _row('darts', 'learned', 1, 0.95),                                       # its manual pair is pending
            _row('darts', 'manual', 1, 0.50, budget=7e6),                            # another budget: not a pair
            _row('darts', 'learned-no-ref', 0, 0.10),                                # a side unit: not a pair
            _row('evolution', 'manual', 2, 0.93), _row('evolution', 'learned', 2, 0.94)]
    d = p1_deltas(rows, S, 12e6)
    assert d['darts'] == [pytest.approx(-0.02)] and d['evolution'] == [pytest.approx(0.01)]


def test_p1_deltas_of_another_learned_space_use_the_same_manual_rows():
    rows = [_row('darts', 'learned', 0, 0.90), _row('darts', 'manual', 0, 0.92), _row('darts', 'learned-1edge', 0, 0.93),
            _row('evolution', 'learned-1edge', 1, 0.95)]                              # no manual pair yet
    assert p1_deltas(rows, S, 12e6, 'learned-1edge') == {'darts': [pytest.approx(0.01)], 'evolution': []}
    assert p1_deltas(rows, S, 12e6)['darts'] == [pytest.approx(-0.02)]


def test_p1_open_needs_every_algorithm_to_still_reach_the_goal():
    from benchmarks._paired import p1_open
    assert p1_open([], S, 12e6)                                                    # nothing run: open
    lost = [_row('darts', 'learned', 0, 0.928), _row('darts', 'manual', 0, 0.931)]
    won = [_row('evolution', 'learned', 0, 0.931), _row('evolution', 'manual', 0, 0.930)]
    assert p1_open(won, S, 12e6)                          # one pair won, four pending: still open
    assert not p1_open(lost + won, S, 12e6)               # one DARTS pair of five lost (best p 0.125) decides it
    assert p1_open(lost + won, S, 12e6, alpha=0.2)        # unless the goal's p were looser
    assert p1_open(lost + won, S, 12e6, 'learned-1edge')  # another learned space has no pairs yet
