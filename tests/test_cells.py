import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

from autospace_nni.cells import Cell, CellError, PRIMITIVES, count_by_hooks
from autospace_nni.cells.ops import register_primitive

from strategies import cells, gene_cells, shapes

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------- grammar ----------
@SETTINGS
@given(cells())
def test_text_round_trip(cell):
    text = str(cell)
    assert Cell.parse(text) == cell
    assert str(Cell.parse(text)) == text
    assert ' ' not in text and '>' not in text and '|' not in text


@SETTINGS
@given(gene_cells())
def test_text_round_trip_with_every_gene(cell):
    text = str(cell)
    assert Cell.parse(text) == cell and str(Cell.parse(text)) == text
    assert Cell.parse(cell.canonical).key == cell.key


def test_old_texts_parse_to_the_same_cells():
    # the genes before decimal ratios, relu/swish and SE styles: the same fields, the same text, the same cost
    for text, genes in [('e6_relu6:0-1=dw3x3', (6, 'relu6', False, 'exp')),
                        ('e3_hswish_se:0-1=dw5x5,0-2=skip,1-3=conv1x1,2-3=dw3x3', (3, 'hswish', True, 'exp')),
                        ('e1_relu6_se:0-1=skip', (1, 'relu6', True, 'exp'))]:
        c = Cell.parse(text)
        assert (c.expand, c.act, c.se, c.se_style) == genes and str(c) == text
        assert isinstance(c.expand, int)
    # known answers of the original rule: SE hidden = int(expanded / 4), width = c_in * expand exactly
    assert Cell.parse('e6_relu6_se:0-1=dw3x3').cost(10, 12, 1, 4, 4) == (
        16 * 10 * 60 + 16 * 60 * 9 + 2 * 60 * 15 + 16 * 60 * 12,
        10 * 60 + 120 + 60 * 9 + 120 + 2 * 60 * 15 + 15 + 60 + 60 * 12 + 24, 4, 4)


def test_new_genes_known_answers():
    # MobileNetV3's 80 -> 200 block: e2.5 gives exactly 200 channels; 24 * 3.67 = 88.08 rounds to 88
    assert Cell.parse('e2.5_hswish:0-1=dw3x3').build(80, 80, 1).project[0].in_channels == 200
    assert Cell.parse('e3.67_relu:0-1=dw3x3').build(24, 24, 1).project[0].in_channels == 88
    # SE from the block input (EfficientNet: 16 -> 96 expanded, 4 hidden) versus from the expanded tensor (24)
    assert Cell.parse('e6_swish_sei:0-1=dw3x3').build(16, 24, 2).se.reduce.out_channels == 4
    assert Cell.parse('e6_swish_se:0-1=dw3x3').build(16, 24, 2).se.reduce.out_channels == 24
    # MobileNetV3's SE: expanded // 4 rounded to 8 (72 -> 24, 120 -> 32), ReLU inside, hard-sigmoid gate
    se = Cell.parse('e3_relu_sev3:0-1=dw5x5').build(40, 40, 1).se
    assert se.reduce.out_channels == 32 and isinstance(se.act, torch.nn.ReLU)
    assert isinstance(se.gate, torch.nn.Hardsigmoid)
    assert isinstance(Cell.parse('e6_swish_sei:0-1=dw3x3').build(16, 24, 2).se.gate, torch.nn.Sigmoid)
    # one cell, one text: a whole decimal is the integer ratio; a style without SE is no style
    assert Cell(((0, 1, 'dw3x3'),), 6.0) == Cell.parse('e6_relu6:0-1=dw3x3')
    assert Cell(((0, 1, 'dw3x3'),), 6, se=False, se_style='in') == Cell.parse('e6_relu6:0-1=dw3x3')


def test_examples_parse():
    c = Cell.parse('e3_hswish_se:0-1=dw5x5,0-2=skip,1-3=conv1x1,2-3=dw3x3')
    assert (c.expand, c.act, c.se, c.n_nodes) == (3, 'hswish', True, 4)
    assert c.edges[0] == (0, 1, 'dw5x5')
    assert str(Cell.parse('e6_relu6:0-1=dw3x3')) == 'e6_relu6:0-1=dw3x3'


@pytest.mark.parametrize('text, needle', [
    ('e6_relu6:0-1=dw4x4', "'dw4x4'"),                   # unknown op
    ('e6_relu6:0-1=dw3x3,1-0=skip', '1-0=skip'),        # backward edge (a cycle)
    ('e6_relu6:0-1=dw3x3,1-1=skip', '1-1=skip'),        # self loop
    ('e6_relu6:0-2=dw3x3', 'node 1'),                   # disconnected node 1
    ('e6_relu6:0-1=dw3x3,0-2=skip', 'node 1'),          # node 1 does not reach the output
    ('e6_relu6:0-1=dw3x3,0-1=skip', '0-1'),             # duplicate edge
    ('e6_relu7:0-1=dw3x3', "'relu7'"),                  # unknown activation
    ('x6_relu6:0-1=dw3x3', "'x6_relu6'"),               # bad genes token
    ('e6_relu6:0->1=dw3x3', "'0->1=dw3x3'"),            # bad edge token
    ('e6_relu6', 'one ":"'),                            # no edges part
    ('e6_relu6:', "''"),                                # empty edge token
    ('e2.50_relu6:0-1=dw3x3', 'write it as 2.5'),       # a decimal ratio written two ways
    ('e6.0_relu6:0-1=dw3x3', 'write it as 6'),          # a whole ratio written as a decimal
    ('e0.5_relu6:0-1=dw3x3', 'at least 1'),             # below one
    ('e6_relu6_se3:0-1=dw3x3', "'e6_relu6_se3'"),       # unknown SE token
])
def test_errors_name_the_bad_part(text, needle):
    with pytest.raises(CellError) as info:
        Cell.parse(text)
    assert needle in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


def test_none_edges_are_absent():
    assert Cell(((0, 1, 'dw3x3'), (0, 2, 'none'), (1, 2, 'skip'))) == Cell.parse('e6_relu6:0-1=dw3x3,1-2=skip')


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='e0123456789_relu6hswsdw3x5:,-=kipnoe', max_size=40))
def test_fuzz_parse_raises_only_cell_error(text):
    try:
        c = Cell.parse(text)
    except CellError:
        return
    assert str(Cell.parse(str(c))) == str(c)


# ---------- isomorphism hash ----------
def _relabel(cell, rng):
    """A random relabelling of the intermediate nodes along a random topological order."""
    n = cell.n_nodes
    preds = {i: {s for s, d, _ in cell.edges if d == i} for i in range(1, n - 1)}
    order, done = [], {0}
    remaining = set(range(1, n - 1))
    while remaining:
        ready = sorted(i for i in remaining if preds[i] <= done)
        pick = ready[rng.randint(len(ready))]
        order.append(pick)
        done.add(pick)
        remaining.remove(pick)
    mapping = {0: 0, n - 1: n - 1, **{old: new for new, old in enumerate(order, 1)}}
    return Cell(tuple((mapping[s], mapping[d], op) for s, d, op in cell.edges), cell.expand, cell.act, cell.se)


@SETTINGS
@given(cells(max_nodes=6), st.integers(0, 1000))
def test_key_invariant_under_relabelling(cell, seed):
    other = _relabel(cell, np.random.RandomState(seed))
    assert other.key == cell.key
    assert other.canonical == cell.canonical


def test_key_distinguishes():
    a = Cell.parse('e6_relu6:0-1=dw3x3,0-2=dw5x5,1-3=skip,2-3=conv1x1')
    b = Cell.parse('e6_relu6:0-1=dw5x5,0-2=dw3x3,1-3=conv1x1,2-3=skip')   # a with nodes 1 and 2 swapped
    c = Cell.parse('e6_relu6:0-1=dw3x3,0-2=dw5x5,1-3=conv1x1,2-3=skip')   # different wiring of ops
    assert a != b and a.key == b.key
    assert a.key != c.key
    assert a.key != a.with_genes(expand=3).key
    assert a.key != a.with_genes(se=True).key


# ---------- random and mutate ----------
@SETTINGS
@given(st.integers(0, 2 ** 31 - 1), st.integers(2, 6), st.sampled_from([0.0, 0.5, 1.0]))
def test_random_is_valid_and_seeded(seed, n, p):
    a = Cell.random(np.random.RandomState(seed), n_nodes=n, edge_prob=p)
    b = Cell.random(np.random.RandomState(seed), n_nodes=n, edge_prob=p)
    assert a == b and a.n_nodes == n
    assert Cell.parse(str(a)) == a


@SETTINGS
@given(cells(), st.integers(0, 2 ** 31 - 1))
def test_mutation_is_local_valid_and_different(cell, seed):
    child = cell.mutate(np.random.RandomState(seed))
    assert child != cell
    assert child.n_nodes == cell.n_nodes
    Cell.parse(str(child))  # valid
    genes_changed = sum([child.expand != cell.expand, child.act != cell.act, child.se != cell.se])
    edge_diff = set(child.edges) ^ set(cell.edges)
    pairs_diff = {e[:2] for e in child.edges} ^ {e[:2] for e in cell.edges}
    if genes_changed:
        assert genes_changed == 1 and not edge_diff
    else:
        # op change: same pairs, two entries differ; add/remove: one pair differs
        assert (len(edge_diff) == 2 and not pairs_diff) or (len(edge_diff) == 1 and len(pairs_diff) == 1)


def test_mutation_of_single_edge_cell_never_gets_stuck():
    rng = np.random.RandomState(1)
    c = Cell.parse('e6_relu6:0-1=dw3x3')
    for _ in range(50):
        c = c.mutate(rng)
    assert c.n_nodes == 2


# ---------- analytic cost == hook count ----------
def _check_cost(cell, c_in, c_out, stride, h, w):
    analytic = cell.cost(c_in, c_out, stride, h, w)
    block = cell.build(c_in, c_out, stride)
    madds, params = count_by_hooks(block, (c_in, h, w))
    assert (analytic.madds, analytic.params) == (madds, params), (str(cell), c_in, c_out, stride, h, w)
    y = block(torch.randn(2, c_in, h, w))
    assert y.shape == (2, c_out, analytic.height, analytic.width)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells(), shapes())
def test_cost_matches_hooks_random(cell, shape):
    _check_cost(cell, *shape)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gene_cells(), shapes())
def test_cost_matches_hooks_with_every_gene(cell, shape):
    _check_cost(cell, *shape)


@pytest.mark.parametrize('op', sorted(p for p in PRIMITIVES if p != 'none'))
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('expand, act, se', [(1, 'relu6', False), (3, 'hswish', True), (6, 'relu6', True)])
def test_cost_matches_hooks_every_primitive(op, stride, expand, act, se):
    cell = Cell(((0, 1, op), (0, 2, 'dw3x3'), (1, 2, op)), expand, act, se)
    for h, w in [(7, 7), (8, 5), (1, 1)]:
        _check_cost(cell, 4, 8, stride, h, w)
        _check_cost(cell, 8, 8, stride, h, w)


def test_shortcut_only_when_shapes_agree():
    cell = Cell.parse('e1_relu6:0-1=skip')
    assert cell.build(8, 8, 1).use_shortcut
    assert not cell.build(8, 8, 2).use_shortcut
    assert not cell.build(8, 16, 1).use_shortcut


def test_register_primitive_is_one_call():
    from torch import nn
    name = 'test_dw3x3_twice'
    if name not in PRIMITIVES:
        register_primitive(name,
                           lambda c, s, act: nn.Sequential(nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False),
                                                           nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)),
                           lambda c, s, h, w: (2 * h * w * c * 9, 2 * c * 9))
    cell = Cell.parse(f'e3_relu6:0-1={name}')
    _check_cost(cell, 4, 4, 2, 6, 6)
    with pytest.raises(ValueError):
        register_primitive(name, None, None)
    with pytest.raises(ValueError):
        register_primitive('bad-name', None, None)
