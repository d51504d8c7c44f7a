"""Population mechanics (no torch): tournament, aging, duplicates, the budget filter, Eqn 5."""

import numpy as np
import pytest

from autospace_nni.cells import Cell
from autospace_nni.strategy.evolution import CellSampler, GroupPopulation


def _pop(size=8, admissible=lambda c: True, replacement='oldest'):
    return GroupPopulation('g', size=size, sampler=CellSampler(), admissible=admissible, replacement=replacement)


def test_seed_references_planted_then_random_without_duplicates():
    rng = np.random.RandomState(0)
    ref = Cell.parse('e6_relu6:0-1=dw3x3')
    planted = [Cell.parse('e3_relu6:0-1=dw5x5'), Cell.parse('e3_relu6:0-1=dw5x5')]
    p = _pop()
    p.seed(rng, [ref], planted=planted)
    assert len(p.members) == 8
    assert p.members[0].reference and p.members[0].cell == ref
    assert p.members[1].cell == planted[0]
    assert len(p.keys()) == 8


def test_tournament_returns_fittest_of_the_draw():
    rng = np.random.RandomState(0)
    p = _pop()
    p.seed(rng)
    for i, m in enumerate(p.members):
        m.fitness = float(i)
    # a tournament over the whole population must return the best member
    assert p.tournament(rng, sample_size=8, exclude=set()) is p.members[-1]
    assert p.tournament(rng, sample_size=8, exclude={p.members[-1].key}) is p.members[-2]


def test_select_distinct_and_mutation_children_inherit_fitness_and_age_out_oldest():
    rng = np.random.RandomState(1)
    p = _pop(size=6)
    p.seed(rng)
    for m in p.members:
        m.fitness = 2.0
    oldest = min(p.members, key=lambda m: m.birth)
    chosen = p.select(rng, 3, sample_size=3, p_mutation=1.0)
    assert len({m.key for m in chosen}) == 3
    assert len(p.members) == 6
    children = [m for m in chosen if m.parent is not None]
    assert children, 'p_mutation=1 must produce children'
    assert all(c.fitness == 2.0 and c.evals == 0 for c in children)
    assert oldest not in p.members


def test_replacement_worst():
    rng = np.random.RandomState(2)
    p = _pop(size=4, replacement='worst')
    p.seed(rng)
    for i, m in enumerate(p.members):
        m.fitness = [5.0, 0.1, 3.0, 4.0][i]
    worst = p.members[1]
    p.select(rng, 1, sample_size=4, p_mutation=1.0)
    assert worst not in p.members


def test_admissible_filter_is_respected():
    rng = np.random.RandomState(3)
    cheap = lambda c: c.expand == 1
    p = _pop(size=10, admissible=cheap)
    p.seed(rng)
    assert p.members and all(m.cell.expand == 1 for m in p.members)
    for _ in range(20):
        p.select(rng, 2, sample_size=3, p_mutation=1.0)
    assert all(m.cell.expand == 1 for m in p.members)


def test_fitness_update_is_eqn5_on_own_scores_and_ranking_prefers_scored():
    rng = np.random.RandomState(4)
    p = _pop(size=4)
    p.seed(rng)
    a, b, c, d = p.members
    # the first score replaces the prior (initial or inherited fitness is no measurement) ...
    p.update_fitness({a.key: 2.0, b.key: 0.5}, beta=0.7)
    assert a.fitness == pytest.approx(2.0) and b.fitness == pytest.approx(0.5)
    # ... later ones follow Eqn 5
    p.update_fitness({a.key: 1.0}, beta=0.7)
    assert a.fitness == pytest.approx(0.7 * 2.0 + 0.3 * 1.0) and a.evals == 2
    assert c.fitness == 1.0 and c.evals == 0 and b.evals == 1
    ranked = p.ranked()
    assert ranked[0] is a and ranked[1] is b   # never-scored c, d rank after scored ones
    # with min_evals=2 a cell scored once ranks after a cell scored twice, even with a higher fitness
    p.update_fitness({b.key: 9.0}, beta=0.0)
    b.evals = 1
    assert p.ranked(min_evals=2)[0] is a and p.top(1, min_evals=2) == [a]
    state = p.state_dict()
    q = _pop(size=4)
    q.load_state_dict(state)
    assert [m.to_dict() for m in q.members] == [m.to_dict() for m in p.members]


def test_a_child_inherits_a_prior_not_evidence():
    rng = np.random.RandomState(5)
    p = _pop(size=6)
    p.seed(rng)
    parent = p.members[0]
    p.update_fitness({parent.key: 3.0}, beta=0.7)
    child = p._admitted_mutant(parent, rng, set(), 50)
    assert child is not None and child.parent == parent.key
    assert child.fitness == 3.0 and child.evals == 0          # a prior for tournaments only
    p.update_fitness({child.key: 0.2}, beta=0.7)
    assert child.fitness == pytest.approx(0.2)                  # its own first score, not 0.7*3 + 0.3*0.2


def test_the_reference_is_a_parent_but_never_a_pick():
    ref = Cell.parse('e6_relu6:0-1=dw3x3')
    children_of_ref = 0
    for seed in range(10):
        rng = np.random.RandomState(seed)
        p = _pop(size=8)
        p.seed(rng, [ref])
        p.members[0].fitness = 5.0   # the reference wins every tournament it enters
        for _ in range(5):
            chosen = p.select(rng, 2, sample_size=8, p_mutation=0.5, exclude={ref.key}, parent_only={ref.key})
            assert ref.key not in {m.key for m in chosen} and ref.key in p.keys()
            children_of_ref += sum(m.parent == ref.key for m in chosen)
        # mutation off: the reference takes no part, and nothing new joins
        before = p.keys()
        chosen = p.select(rng, 2, sample_size=8, p_mutation=0.0, exclude={ref.key}, parent_only={ref.key})
        assert ref.key not in {m.key for m in chosen} and p.keys() == before
    assert children_of_ref >= 40   # each round's first tournament sees every member, so the reference wins it


@pytest.mark.parametrize('replacement', ['oldest', 'worst'])
def test_picked_cells_and_the_reference_never_age_out_in_the_same_round(replacement):
    # found by benchmarks/overhead.py: a child's admission could evict a member picked earlier in the same
    # round (or the reference), leaving the supernet fewer than K branches
    ref = Cell.parse('e6_relu6:0-1=dw3x3')
    for seed in range(30):
        rng = np.random.RandomState(seed)
        p = _pop(size=5, replacement=replacement)
        p.seed(rng, [ref])
        for _ in range(6):
            chosen = p.select(rng, 4, sample_size=3, p_mutation=0.9, exclude={ref.key})
            keys = p.keys()
            assert len(chosen) == 4 and all(m.key in keys for m in chosen)
            assert ref.key in keys and len(p.members) == 5
