"""timm block strings both ways, checked against timm itself: its own definitions read into our presets, and
what we write builds, in timm, a model with our analytic MAdds and params."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from autospace_nni.cells import Cell, count_by_hooks
from autospace_nni.errors import ArchError
from autospace_nni.presets import network_architecture
from autospace_nni.space import Architecture, Skeleton
from autospace_nni.space.timm_blocks import from_timm, to_timm

timm = pytest.importorskip('timm')
from timm.models import efficientnet as _effnet, mobilenetv3 as _mnv3  # noqa: E402

# our preset -> (timm model, its module, the model settings from_timm needs)
MODELS = {
    'mnasnet-a1': ('semnasnet_100', _effnet, dict(act='relu', se_style='in')),
    'efficientnet-b0': ('efficientnet_b0', _effnet, dict(act='swish', se_style='in', dropout=0.2)),
    'mobilenetv3-large': ('mobilenetv3_large_100', _mnv3, dict(act='hswish', se_style='v3', bn_eps=1e-3,
                                                               dropout=0.2, stem_width=16)),
    'mobilenetv3-small': ('mobilenetv3_small_100', _mnv3, dict(act='hswish', se_style='v3', bn_eps=1e-3,
                                                               dropout=0.2, stem_width=16, num_features=1024)),
}


def _timm_definition(model: str, module) -> list:
    """timm's own architecture definition of ``model``, caught on its way into timm's decoder."""
    caught = {}
    real = module.decode_arch_def

    def spy(arch_def, *args, **kwargs):
        caught['arch_def'] = arch_def
        return real(arch_def, *args, **kwargs)
    with mock.patch.object(module, 'decode_arch_def', spy):
        timm.create_model(model)
    return caught['arch_def']


def _timm_model_of(model: str, module, arch_def):
    """timm's ``model`` (its stem, head, SE and activation settings) with its blocks replaced by ``arch_def``."""
    real = module.decode_arch_def
    with mock.patch.object(module, 'decode_arch_def', lambda _, *a, **k: real(arch_def, *a, **k)):
        return timm.create_model(model)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_timms_own_definitions_read_into_our_presets(name):
    model, module, settings_ = MODELS[name]
    arch = from_timm(_timm_definition(model, module), name=name, **settings_)
    ours = network_architecture(name)
    assert arch.skeleton == ours.skeleton
    assert arch.sample == ours.sample


@pytest.mark.parametrize('name', sorted(MODELS))
def test_what_we_write_builds_the_same_network_in_timm(name):
    model, module, settings_ = MODELS[name]
    ours = network_architecture(name)
    written = to_timm(ours)
    rebuilt = _timm_model_of(model, module, written)
    assert count_by_hooks(rebuilt, (3, 224, 224)) == tuple(ours.cost())
    assert from_timm(written, name=name, **settings_).sample == ours.sample


_KERNELS = ('dw3x3', 'dw5x5', 'dw7x7')


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(['mnasnet-a1', 'mobilenetv3-large']), st.integers(0, 2 ** 31 - 1))
def test_random_expressible_networks_cost_the_same_in_timm(name, seed):
    """Any expressible network: written, built by timm, hook-counted: our analytic MAdds and params."""
    model, module, settings_ = MODELS[name]
    rng = np.random.RandomState(seed)
    sk = Skeleton.preset(name)
    choices = {}
    for spec in sk.blocks():
        if spec.zero_allowed and rng.rand() < 0.15:
            choices[spec.label] = 'zero'
            continue
        se = bool(rng.rand() < 0.5)
        choices[spec.label] = Cell(((0, 1, _KERNELS[rng.randint(3)]),), [1, 3, 4, 6, 2.5][rng.randint(5)],
                                   ['relu', 'relu6', 'hswish', 'swish'][rng.randint(4)], se,
                                   settings_['se_style'] if se else 'exp')
    arch = Architecture(sk, choices)
    rebuilt = _timm_model_of(model, module, to_timm(arch))
    assert count_by_hooks(rebuilt, (3, 224, 224)) == tuple(arch.cost())


def test_round_trip_drops_only_zero_blocks():
    sk = Skeleton.preset('mnasnet-a1')
    base = network_architecture('mnasnet-a1')
    arch = Architecture(sk, {**base.choices, 's3_b2': 'zero'})
    back = from_timm(to_timm(arch), name='mnasnet-a1', act='relu', se_style='in')
    assert back.cost() == arch.cost()
    assert [s.depth for s in back.skeleton.stages] == [2, 3, 3, 2, 3, 1]


@pytest.mark.parametrize('arch_def, needle', [
    ([['ir_r1_k3_s2_e6_c24_se0.5']], 'SE ratio 0.5'),
    ([['ir_r1_k9_s2_e6_c24']], 'kernel 9'),
    ([['er_r1_k3_s2_e6_c24']], "block type 'er'"),
    ([['ir_r1_k3_s2_e6_c24_nmi']], "activation 'mi'"),
    ([['ir_r1_k3_s2_e1_c24']], 'write it as ds'),
    ([['ir_r1_k3_s2_e6_c24', 'ir_r1_k3_s2_e6_c24']], 'split the stage'),
    ([['ir_r1_k3_s2_e6_c32'], ['ir_r1_k3_s1_e6_c32_noskip']], 'noskip'),
    ([['ir_r1_k3_s2_e6_c24_a3']], "option 'a3'"),
    ([['ir_r1_k3_e6_c24']], 'lacks option(s) s'),
])
def test_inexpressible_definitions_name_the_block(arch_def, needle):
    with pytest.raises(ArchError) as info:
        from_timm(arch_def)
    assert needle in str(info.value), str(info.value)


def test_inexpressible_networks_name_the_block():
    sk = Skeleton.preset('mnasnet-a1')
    base = network_architecture('mnasnet-a1').choices
    with pytest.raises(ArchError, match='block s2_b1: cell .* not expressible'):
        to_timm(Architecture(sk, {**base, 's2_b1': 'e3_relu:0-1=dw3x3,0-2=skip,1-2=dw5x5'}))
    with pytest.raises(ArchError, match="grammar's own SE"):
        to_timm(Architecture(sk, {**base, 's2_b1': 'e3_relu_se:0-1=dw3x3'}))
    with pytest.raises(ArchError, match='mix SE styles'):
        to_timm(Architecture(sk, {**base, 's2_b1': 'e3_relu_sev3:0-1=dw3x3'}))
