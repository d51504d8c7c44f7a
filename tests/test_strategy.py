"""The AutoSpace strategy end to end on digits: known-answer sanity, budget direction, NNI's
NasExperiment path, learned-space round trip, checkpoint state."""

import logging
import warnings

import numpy as np
import pytest
import torch

from autospace_nni import AutoSpace, Cell, ExplorationSpace, LearnedSpace, Skeleton, Stage, load_dataset, make_evaluator
from autospace_nni.cells import count_by_hooks
from autospace_nni.errors import LearnedSpaceError
from autospace_nni.space.network import Architecture
from autospace_nni.space.skeleton import reference_cell

logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)

# Two searchable blocks after a 4-channel stem and before a small head: here the blocks carry the task,
# so a block that is only an identity (a linear projection) cannot fit digits (0.56 val accuracy trained
# alone, against 0.97-0.99 for the MBConv cells below).
SANITY = Skeleton(name='sanity-2', input_shape=(1, 8, 8), num_classes=10, stem_width=4, stem_stride=1,
                  stages=(Stage(16, 1, 1), Stage(16, 1, 2)), head_width=16, first_block=None)
USELESS = ['e1_relu6:0-1=skip', 'e1_relu6:0-1=skip,1-2=skip', 'e1_hswish:0-1=skip',
           'e1_relu6:0-1=skip,0-2=skip,1-2=skip']
GOOD = ['e3_relu6:0-1=dw3x3', 'e6_relu6:0-1=dw5x5', 'e6_hswish:0-1=dw3x3', 'e3_relu6:0-1=dw5x5,1-2=dw3x3']


@pytest.fixture(scope='module')
def digits():
    return load_dataset('digits', seed=0)


def _evolve(data, skeleton, *, epochs, batch_size=16, seed=0, **kw):
    torch.manual_seed(seed)
    strategy = AutoSpace(seed=seed, **kw)
    ev = make_evaluator(data, max_epochs=epochs, batch_size=batch_size, seed=seed)
    learned = strategy.evolve(ExplorationSpace(skeleton), ev)
    return learned, strategy


def test_sanity_useless_cells_never_reach_the_top(digits):
    learned, strategy = _evolve(digits, SANITY, epochs=30, population_size=9, sample_k=3, tournament_size=2,
                                p_mutation=0.0, top_m=2, patience=0, warmup_iterations=2,
                                seed_cells=USELESS + GOOD)   # the default fitness estimator
    useless = {Cell.parse(c).key for c in USELESS}
    for group, cells in learned.groups.items():
        top = [c for c in cells if not c.reference]
        assert len(top) == 2
        assert not any(c.cell.key in useless for c in top), (group, [str(c.cell) for c in top])
        ranked = strategy.populations[group].ranked()
        ref_rank = [m.reference for m in ranked].index(True)
        assert ref_rank <= 2, f'reference ranks {ref_rank} in {group}'
        # every useless cell was actually scored, and scored below the reference
        for m in ranked:
            if m.key in useless:
                assert m.evals > 0 and m.fitness < 1.0


def test_budget_moves_the_learned_space(digits):
    sk = Skeleton.preset('tiny-8')
    ref_madds = Architecture.uniform(sk, reference_cell(sk)).cost().madds

    def mean_cell_madds(budget):
        learned, _ = _evolve(digits, sk, epochs=4, batch_size=64, population_size=12, sample_k=2, top_m=4,
                             warmup_iterations=1, patience=0, budget_madds=budget, keep_reference=False)
        costs = []
        for g, cells in learned.groups.items():
            b = sk.groups()[g][0]
            costs += [c.cell.cost(b.c_in, b.c_out, b.stride, b.height, b.width).madds for c in cells]
        return np.mean(costs), learned

    small, learned_small = mean_cell_madds(0.5 * ref_madds)
    large, _ = mean_cell_madds(1.0 * ref_madds)
    assert small < large
    assert learned_small.budget_madds == 0.5 * ref_madds
    # the hard filter: a network using each learned cell in its group's blocks, with the cheapest
    # candidates elsewhere (zero where allowed, else the cheapest single-edge e1 cell), fits the budget
    cheapest = {b.label: 0 if b.zero_allowed else min(
        Cell(((0, 1, op),), 1, 'relu6', False).cost(b.c_in, b.c_out, b.stride, b.height, b.width).madds
        for op in ('skip', 'avg_pool3x3', 'max_pool3x3')) for b in sk.blocks()}
    fixed = Architecture.uniform(sk, reference_cell(sk)).cost().madds - sum(
        reference_cell(sk).cost(b.c_in, b.c_out, b.stride, b.height, b.width).madds for b in sk.blocks())
    for g, cells in learned_small.groups.items():
        blocks = sk.groups()[g]
        elsewhere = fixed + sum(v for l, v in cheapest.items() if l not in {b.label for b in blocks})
        for c in cells:
            if c.reference:
                continue
            used = sum(c.cell.cost(b.c_in, b.c_out, b.stride, b.height, b.width).madds for b in blocks)
            assert elsewhere + used <= 0.5 * ref_madds, (g, str(c.cell))


def test_nni_experiment_learned_space_and_export(digits, tmp_path):
    warnings.simplefilter('ignore')
    from nni.nas.experiment import NasExperiment
    torch.manual_seed(0)
    space = ExplorationSpace(Skeleton.preset('tiny-8'))
    ev = make_evaluator(digits, max_epochs=4, batch_size=64)
    strategy = AutoSpace(population_size=8, sample_k=2, top_m=3, warmup_iterations=1, seed=0)
    exp = NasExperiment(space, ev, strategy)
    exp.config.experiment_working_directory = str(tmp_path / 'nni')
    exp.run()
    try:
        learned = strategy.learned_space()
        assert strategy.iteration == 4 and len(strategy.history) == 4
        top = exp.export_top_models(formatter='dict')[0]
        sk = learned.skeleton
        assert set(top) == set(sk.labels)
        for spec in sk.blocks():
            assert top[spec.label] in learned.candidates(spec)
    finally:
        exp.stop()

    # learned space: save/load round trip, NNI model space, search-space JSON, cost
    path = tmp_path / 'learned_space.json'
    learned.save(path)
    again = LearnedSpace.load(path)
    assert again.to_dict() == learned.to_dict()
    for g, cells in learned.groups.items():
        assert 1 <= len(cells) <= 3 + 1 and cells[-1].reference
    ms = again.model_space()
    simplified = ms.simplify()
    assert set(simplified) == set(sk.labels)
    assert simplified['s2_b1'].values[-1] == 'zero' and 'zero' not in simplified['s1_b0'].values
    ss = again.to_nni_search_space()
    assert ss['s1_b0']['_type'] == 'choice' and ss['s1_b0']['_value'] == list(simplified['s1_b0'].values)
    sample = {l: m.values[np.random.RandomState(0).randint(len(m.values))] for l, m in simplified.items()}
    frozen = ms.freeze(sample)
    assert count_by_hooks(frozen, sk.input_shape) == tuple(again.cost(sample))
    assert frozen(torch.randn(2, *sk.input_shape)).shape == (2, 10)
    prov = again.provenance
    assert prov['iterations'] == 4 and prov['options']['population_size'] == 8 and prov['package_version']


def test_learned_space_errors(tmp_path):
    sk = Skeleton.preset('tiny-8')
    doc = {'format': 'autospace-nni/learned-space', 'format_version': 1, 'skeleton': sk.to_dict(),
           'groups': {g: {'cells': [{'cell': 'e6_relu6:0-1=dw3x3', 'fitness': 1.0}]} for g in sk.groups()}}
    assert LearnedSpace.from_dict(doc).skeleton == sk
    with pytest.raises(LearnedSpaceError, match='format version 2'):
        LearnedSpace.from_dict({**doc, 'format_version': 2})
    with pytest.raises(LearnedSpaceError, match='made for skeleton'):
        LearnedSpace.from_dict(doc, skeleton=Skeleton.preset('mobile-28'))
    with pytest.raises(LearnedSpaceError, match='missing groups'):
        LearnedSpace.from_dict({**doc, 'groups': {}})
    with pytest.raises(LearnedSpaceError, match='invalid cell'):
        LearnedSpace.from_dict({**doc, 'groups': {g: {'cells': [{'cell': 'e6_relu6:0-1=dw9x9', 'fitness': 1}]}
                                                  for g in sk.groups()}})
    p = tmp_path / 'bad.json'
    p.write_text('{"format": ')
    with pytest.raises(LearnedSpaceError, match='not valid JSON'):
        LearnedSpace.load(p)


def test_state_dict_round_trip_resumes_identically(digits):
    sk = Skeleton.preset('tiny-8')
    kw = dict(population_size=8, sample_k=2, top_m=3, warmup_iterations=1, patience=0, seed=3)
    _, first = _evolve(digits, sk, epochs=3, batch_size=64, **kw)
    state = first.state_dict()
    assert {'populations', 'rng', 'sampled', 'supernet', 'iteration'} <= set(state)
    assert any('_arch_alpha' in k for k in state['supernet']) and any('supercell' in k for k in state['supernet'])

    second = AutoSpace(**kw)
    space = ExplorationSpace(sk)
    second.prepare(space)
    supernet = second.mutate_model(space)
    from nni.nas.space import RawFormatModelSpace
    second._mutated_model_space = RawFormatModelSpace(supernet, None)
    second.attach(supernet)
    second.load_state_dict(state)
    assert second.iteration == first.iteration == 3
    for g in first.populations:
        assert second.populations[g].state_dict() == first.populations[g].state_dict()
    assert second.sampled == first.sampled
    for k, v in first.supernet.state_dict().items():
        assert torch.equal(v, supernet.state_dict()[k]), k
    # the RNG continues identically: both draw the same next sample
    first._sample_next()
    second._sample_next()
    assert first.sampled == second.sampled


def test_bad_arguments_raise_value_error():
    for kw in [dict(population_size=0), dict(sample_k=5, population_size=4), dict(p_mutation=1.5),
               dict(beta=1.0), dict(replacement='random'), dict(budget_penalty='log'), dict(ops=['none']),
               dict(fitness='mix'), dict(iterations=0), dict(expand_choices=[0])]:
        with pytest.raises(ValueError):
            AutoSpace(**kw)
