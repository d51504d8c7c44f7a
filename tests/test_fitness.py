"""The fitness estimators and the evolution's design rules: regression tests for faults found by measuring
the first implementation (docs/method-notes.md, "What the fitness benchmark changed")."""

import inspect
import logging
import math

import numpy as np
import pytest
import torch

from autospace_nni import AutoSpace, Cell, ExplorationSpace, Skeleton, load_dataset, make_evaluator
from autospace_nni.budget import AnalyticCostProfiler, BudgetPenalty, budget_factor
from autospace_nni.fitness import DEFAULT_FITNESS, FITNESS_ESTIMATORS, alpha_scores, eqn5_update, paired_scores
from autospace_nni.space.network import Architecture, fixed_cost
from autospace_nni.space.skeleton import reference_cell

logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)


@pytest.fixture(scope='module')
def digits():
    return load_dataset('digits', seed=0)


def _evolve(data, *, epochs, batch_size=64, skeleton='tiny-8', **kw):
    torch.manual_seed(0)
    strategy = AutoSpace(seed=0, **kw)
    ev = make_evaluator(data, max_epochs=epochs, batch_size=batch_size, seed=0)
    learned = strategy.evolve(ExplorationSpace(Skeleton.preset(skeleton)), ev)
    return learned, strategy


# ----- the arithmetic, with known answers -----

def test_scores_and_eqn5_known_answers():
    assert alpha_scores([0.2, 0.3, 0.5], ['a', 'b', 'ref'], True) == {'a': pytest.approx(0.4), 'b': pytest.approx(0.6)}
    assert alpha_scores([0.25, 0.75], ['a', 'b'], False) == {'a': pytest.approx(0.5), 'b': pytest.approx(1.5)}
    r = paired_scores({'a': 1.0, 'b': 2.0}, baseline=1.5)
    assert r['a'] == pytest.approx(math.exp(0.5)) and r['b'] == pytest.approx(math.exp(-0.5))
    assert paired_scores({'a': 1.0, 'b': 3.0}) == {'a': pytest.approx(math.e), 'b': pytest.approx(1 / math.e)}
    assert eqn5_update(9.0, 2.0, 0.7, evals=0) == 2.0           # a prior is replaced, not averaged
    assert eqn5_update(2.0, 1.0, 0.7, evals=1) == pytest.approx(1.7)
    assert DEFAULT_FITNESS in FITNESS_ESTIMATORS


def test_hinged_budget_penalty_gives_no_reward_below_the_budget():
    sk = Skeleton.preset('tiny-8')
    prof = AnalyticCostProfiler(sk)
    under = torch.tensor(5e4, requires_grad=True)
    f = budget_factor(under, 1e5, 0.3)
    f.backward()
    assert float(f) == 1.0 and float(under.grad) == 0.0        # the unhinged form gave < 1 and a gradient
    over = torch.tensor(2e5, requires_grad=True)
    g = budget_factor(over, 1e5, 0.3)
    g.backward()
    assert float(g) == pytest.approx((math.log(2e5) / math.log(1e5)) ** 0.3) and float(over.grad) > 0
    # through the penalty: α gets no gradient from the budget while the expected MAdds are under it
    alpha = torch.zeros(2, requires_grad=True)
    pen = BudgetPenalty(prof, 1e9).bind({'s1_b0': alpha}, {'s1_b0': ['e1_relu6:0-1=skip', 'e6_relu6:0-1=dw3x3']})
    loss, _ = pen(torch.tensor(1.0), None)
    loss.backward()
    assert float(loss) == 1.0 and torch.count_nonzero(alpha.grad) == 0


# ----- admissibility -----

def test_e6_cells_are_admissible_when_the_reference_network_is_over_budget():
    sk = Skeleton.preset('mobile-28')
    ref = reference_cell(sk)
    budget = 12e6
    assert Architecture.uniform(sk, ref).cost().madds > budget   # 14.45 M: the situation that shut e6 out
    strategy = AutoSpace(population_size=8, sample_k=2, budget_madds=budget, seed=0)
    strategy.prepare(ExplorationSpace(sk))
    # the old rule (a block's share of the budget, in proportion to the reference) rejected every e6 cell
    blocks = sk.blocks()
    ref_costs = {b.label: ref.cost(b.c_in, b.c_out, b.stride, b.height, b.width).madds for b in blocks}
    share = {l: (budget - fixed_cost(sk).madds) * c / sum(ref_costs.values()) for l, c in ref_costs.items()}
    e6 = [Cell.parse(t) for t in ('e6_relu6:0-1=dw3x3', 'e6_relu6:0-1=dw5x5', 'e6_hswish_se:0-1=dw7x7')]
    assert any(ref_costs[b.label] > share[b.label] for b in blocks)
    for g, pop in strategy.populations.items():
        for cell in e6:
            assert pop.admissible(cell), (g, str(cell))
    # and a cell that cannot fit in any network is still refused
    huge = Cell.parse('e6_hswish_se:0-1=conv1x1,0-2=dw7x7,0-3=dw7x7,1-2=conv1x1,1-3=dw7x7,2-3=conv1x1')
    assert not strategy.populations['s1_rest'].admissible(huge)
    tight = AutoSpace(population_size=8, sample_k=2, budget_madds=fixed_cost(sk).madds + 2e6, seed=0)
    tight.prepare(ExplorationSpace(sk))
    assert not tight.populations['s1_first'].admissible(Cell.parse('e6_relu6:0-1=dw7x7'))


# ----- the run: iterations, evidence, finals, provenance -----

def test_iteration_is_a_pass_over_the_training_split_and_top_m_needs_two_scores(digits):
    learned, s = _evolve(digits, epochs=6, population_size=10, sample_k=2, top_m=2, warmup_iterations=1, patience=0)
    train_batches = len(digits.train) // 64   # drop_last
    assert len(digits.val) < len(digits.train)
    assert [h['steps'] for h in s.history] == [train_batches] * 6   # not the held-out split's length
    # the last ceil(top_m / K) = 1 iteration re-scores the finalists, without mutation
    assert [h['final'] for h in s.history] == [False] * 5 + [True]
    finals = s.history[-1]['sampled']
    for g, cells in learned.groups.items():
        pop = s.populations[g]
        for c in cells:
            if not c.reference:
                assert pop.find(c.cell.key).evals >= 2, (g, str(c.cell))
        assert all(pop.find(Cell.parse(t).key) is not None for t in finals[g])
    # steps_per_iteration still overrides
    _, s2 = _evolve(digits, epochs=2, population_size=6, sample_k=2, top_m=2, warmup_iterations=1, patience=0,
                    steps_per_iteration=3)
    assert [h['steps'] for h in s2.history] == [3, 3]


def test_reference_mutants_join_the_population(digits):
    _, s = _evolve(digits, epochs=4, population_size=8, sample_k=2, top_m=2, warmup_iterations=1, patience=0,
                   p_mutation=1.0, tournament_size=8, initial_fitness=0.0)
    ref = s.references['s1_first'].key
    parents = [m.parent for pop in s.populations.values() for m in pop.members]
    assert ref in parents   # before, the reference was never a tournament parent


def test_provenance_records_every_option(digits):
    learned, s = _evolve(digits, epochs=2, population_size=6, sample_k=2, top_m=2, warmup_iterations=1, patience=0,
                         fitness='alpha-gates')
    options = learned.provenance['options']
    params = [p for p in inspect.signature(AutoSpace.__init__).parameters
              if p not in ('self', 'config', 'checkpoint_dir', 'mutation_hooks')]
    assert sorted(options) == sorted(params)
    assert options['fitness'] == 'alpha-gates' and options['eval_images'] == 256 and options['min_evals'] == 2


@pytest.mark.parametrize('fitness', sorted(FITNESS_ESTIMATORS))
def test_every_estimator_scores_the_sampled_cells(digits, fitness):
    _, s = _evolve(digits, epochs=3, population_size=6, sample_k=2, top_m=2, warmup_iterations=1, patience=0,
                   fitness=fitness, final_iterations=0)
    scored = [h for h in s.history if not h['warmup']]
    assert len(scored) == 2
    for h in scored:
        for g, picks in h['sampled'].items():
            scores = h[f'scores/{g}']
            assert {Cell.parse(t).key for t in picks} <= set(scores)
            assert all(np.isfinite(v) and v > 0 for v in scores.values())
            # the picks differ, so a working estimator gives them different scores
            assert len({round(v, 9) for k, v in scores.items() if k != s.references[g].key}) > 1


def test_final_iterations_fit_after_the_warm_up_within_t(digits):
    # ceil(top_m / K) = 3 final iterations do not fit in T=3 after W=2: one does, and the run still has T iterations
    _, s = _evolve(digits, epochs=3, population_size=8, sample_k=2, top_m=6, warmup_iterations=2, patience=0,
                   steps_per_iteration=2)
    assert [(h['warmup'], h['final']) for h in s.history] == [(True, False), (True, False), (False, True)]
