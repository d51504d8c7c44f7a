"""The supernet layer: Eqn 3, Eqn 5's score, binary gates, and the static weight pool."""

import numpy as np
import pytest
import torch

from autospace_nni.cells import Cell
from autospace_nni.space.skeleton import Skeleton
from autospace_nni.space.supernet import AutoSpaceMixedLayer, SuperCell, pool_size

SPEC = Skeleton.preset('tiny-8').blocks()[2]        # s2_b1: 24 -> 24, stride 1, shortcut
CELLS = [Cell.parse(t) for t in ['e3_relu6:0-1=dw3x3,0-2=skip,1-2=conv1x1', 'e6_hswish_se:0-1=dw5x5',
                                 'e1_relu6:0-1=avg_pool3x3,1-3=dw3x3,0-2=max_pool3x3,2-3=sep_dw1x3_3x1']]
REF = Cell.parse('e6_relu6:0-1=dw3x3')


def _layer(max_branches=4):
    pool = SuperCell(SPEC, max_nodes=4, ops=['skip', 'dw3x3', 'dw5x5', 'conv1x1', 'avg_pool3x3', 'max_pool3x3',
                                              'sep_dw1x3_3x1'], expand_choices=[1, 3, 6])
    return AutoSpaceMixedLayer(SPEC, pool, max_branches, SPEC.label, SPEC.group)


def test_eqn3_is_the_softmax_weighted_sum():
    torch.manual_seed(0)
    layer = _layer()
    layer.set_branches(CELLS, REF)
    with torch.no_grad():
        layer._arch_alpha.copy_(torch.tensor([0.3, -1.0, 0.5, 0.1]))
    layer.eval()
    x = torch.randn(2, SPEC.c_in, SPEC.height, SPEC.width)
    w = torch.softmax(layer._arch_alpha, -1)
    expected = sum(w[k] * layer.supercell(x, c) for k, c in enumerate(CELLS + [REF]))
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_scores_relative_to_reference_and_without():
    layer = _layer()
    layer.set_branches(CELLS, REF)
    with torch.no_grad():
        layer._arch_alpha.copy_(torch.tensor([np.log(2.0), 0.0, np.log(0.5), 0.0]))
    s = layer.scores()
    assert s[CELLS[0].key] == pytest.approx(2.0) and s[CELLS[1].key] == pytest.approx(1.0)
    assert s[CELLS[2].key] == pytest.approx(0.5) and REF.key not in s
    layer.set_branches(CELLS, None)
    assert torch.count_nonzero(layer._arch_alpha) == 0          # α resets when the set changes
    assert all(v == pytest.approx(1.0) for v in layer.scores().values())   # K * p with uniform p


def test_binary_gates_value_is_one_path_and_alpha_gets_gradient():
    torch.manual_seed(1)
    layer = _layer()
    layer.set_branches(CELLS, REF)
    layer.path_mode = layer.weight_path_mode = 'sample'
    layer.generator = torch.Generator().manual_seed(0)
    layer.eval()
    x = torch.randn(2, SPEC.c_in, SPEC.height, SPEC.width)
    # weight step: one path, and α gets nothing
    out = layer(x)
    assert any(torch.allclose(out, layer.supercell(x, c), atol=1e-6) for c in CELLS + [REF])
    out.square().mean().backward()
    assert layer._arch_alpha.grad is None
    # α step: same value, and α gets the binary-gate gradient
    layer.arch_step = True
    out = layer(x)
    assert any(torch.allclose(out, layer.supercell(x, c), atol=1e-6) for c in CELLS + [REF])
    out.square().mean().backward()
    assert layer._arch_alpha.grad is not None and layer._arch_alpha.grad[:4].abs().sum() > 0


def test_pool_is_static_and_only_used_weights_get_gradients():
    torch.manual_seed(2)
    layer = _layer()
    n_params = pool_size(layer)
    layer.set_branches(CELLS[:1], None)
    x = torch.randn(2, SPEC.c_in, SPEC.height, SPEC.width)
    layer(x).sum().backward()
    used = {id(p) for p in layer.supercell.used_parameters(CELLS[0])}
    for name, p in layer.supercell.named_parameters():
        if id(p) in used:
            assert p.grad is not None, name
        else:
            assert p.grad is None, name
    layer.set_branches(CELLS, REF)
    assert pool_size(layer) == n_params            # new cells, same parameter set


def test_mutated_child_inherits_the_weights_it_shares():
    rng = np.random.RandomState(0)
    pool = _layer().supercell
    parent = CELLS[0]
    for _ in range(30):
        child = parent.mutate(rng, ops=pool.ops, expand_choices=pool.expand_choices)
        shared = {id(p) for p in pool.used_parameters(parent)} & {id(p) for p in pool.used_parameters(child)}
        if child.expand == parent.expand:
            e = child.expand
            expected = list(pool.project[f'e{e}'].parameters())
            if e != 1:
                expected += list(pool.expand[f'e{e}'].parameters())
            if child.se and parent.se and child.act == parent.act:
                expected += list(pool.se[f'e{e}_{child.act}'].parameters())
            for s_, d, op in set(child.edges) & set(parent.edges):
                key = f'{s_}_{d}_{op}_e{e}'
                if key in pool.edges:
                    expected += list(pool.edges[key].parameters())
            assert shared == {id(p) for p in expected}
        else:
            assert not shared          # another expand ratio: its own pool entries
        parent = child


def _pre_act_build(c, stride, act):
    # the activation *before* the conv, and a 3x3 that ignores it: paths an interpreter that appends the
    # activation after every edge would get wrong
    from torch import nn
    from autospace_nni.cells.ops import make_activation
    return nn.Sequential(make_activation(act), nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c))


@pytest.fixture
def pre_act_primitive():
    from autospace_nni.cells.ops import PRIMITIVES, register_primitive
    register_primitive('test_preact_dw3x3', _pre_act_build, PRIMITIVES['dw3x3'].cost)
    yield 'test_preact_dw3x3'
    PRIMITIVES.pop('test_preact_dw3x3')


@pytest.mark.parametrize('spec_index', [1, 2])          # s2_b0: stride 2, 16 -> 24; s2_b1: the shortcut
def test_supernet_path_and_exported_block_compute_the_same_function(pre_act_primitive, spec_index):
    from autospace_nni.cells.ops import PRIMITIVES
    spec = Skeleton.preset('tiny-8').blocks()[spec_index]
    ops = sorted(set(PRIMITIVES) - {'none'})
    assert pre_act_primitive in ops
    pool = SuperCell(spec, max_nodes=3, ops=ops, expand_choices=[1, 3])
    torch.manual_seed(spec_index)
    with torch.no_grad():                                 # BN statistics and affine terms away from identity
        for name, t in pool.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if 'running_var' in name or name.endswith('1.weight') else
                        torch.randn_like(t) * 0.3)
    x = torch.randn(4, spec.c_in, spec.height, spec.width)
    checked = 0
    for op in ops:
        for act in ('relu6', 'hswish'):
            for e, se in ((1, False), (3, True)):
                cell = Cell.parse(f'e{e}_{act}{"_se" if se else ""}:0-1={op},0-2=dw3x3,1-2={op}')
                block = cell.build(spec.c_in, spec.c_out, spec.stride)
                block.load_state_dict(pool.block_state_dict(cell))     # strict: every exported weight is pooled
                for train in (False, True):
                    pool.train(train), block.train(train)
                    with torch.no_grad():
                        assert torch.allclose(pool(x, cell), block(x), atol=1e-5), (str(cell), train)
                checked += 1
    assert checked == 4 * len(ops)
    # BN statistics from a twin's (hswish) training pass land in the shared pool, as they do in the block
    cell = Cell.parse(f'e3_hswish:0-1={pre_act_primitive}')
    before = pool.block_state_dict(cell)['expand.1.running_mean'].clone()
    pool.train()
    pool(x, cell)
    assert not torch.equal(pool.block_state_dict(cell)['expand.1.running_mean'], before)


@pytest.mark.parametrize('spec_index', [1, 2])
def test_supernet_runs_the_new_genes_as_their_exported_blocks(spec_index):
    """Decimal expand ratios (rounded widths, pooled under dot-free keys), relu/swish and the SE styles."""
    spec = Skeleton.preset('tiny-8').blocks()[spec_index]
    cells = [Cell.parse(t) for t in ('e2.5_swish_sei:0-1=dw3x3', 'e3_relu_sev3:0-1=dw5x5,0-2=skip,1-2=conv1x1',
                                     'e1_relu_sev3:0-1=dw3x3', 'e3_hswish_se:0-1=dw3x3', 'e2.5_relu:0-1=dw5x5')]
    pool = SuperCell(spec, max_nodes=3, ops=['dw3x3', 'dw5x5', 'skip', 'conv1x1'], expand_choices=[1, 2.5, 3],
                     acts=['relu6', 'hswish', 'relu', 'swish'], se_styles=['exp', 'in', 'v3'])
    assert 'e2p5' in pool.project and not any('2.5' in k for k in pool.state_dict())
    torch.manual_seed(spec_index)
    with torch.no_grad():
        for name, t in pool.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if 'running_var' in name else torch.randn_like(t) * 0.3)
    x = torch.randn(3, spec.c_in, spec.height, spec.width)
    for cell in cells:
        assert pool.supports(cell) is None
        block = cell.build(spec.c_in, spec.c_out, spec.stride)
        block.load_state_dict(pool.block_state_dict(cell))
        pool.eval(), block.eval()
        with torch.no_grad():
            assert torch.allclose(pool(x, cell), block(x), atol=1e-5), str(cell)
    narrow = SuperCell(spec, max_nodes=3, ops=['dw3x3'], expand_choices=[2.5], acts=['swish'])
    assert 'SE style in' in narrow.supports(Cell.parse('e2.5_swish_sei:0-1=dw3x3'))
