import json
import subprocess
import sys

import pytest
import torch

from autospace_nni.cells import count_by_hooks
from autospace_nni.presets import build_network, network_architecture, PAPER_FIGURES
from autospace_nni.space import Architecture, Skeleton, SKELETON_PRESETS, reference_cell
from autospace_nni.errors import ArchError, SkeletonError


@pytest.mark.parametrize('name', ['mobilenetv2', 'proxylessnas-mobile'])
def test_published_networks_match_paper_within_one_percent(name):
    cost = network_architecture(name).cost()
    paper = PAPER_FIGURES[name]
    assert abs(cost.madds / paper['madds'] - 1) < 0.01
    assert abs(cost.params / paper['params'] - 1) < 0.04   # papers round params to 0.1M


def test_mobilenetv2_equals_torchvision_exactly():
    import torchvision
    ours = network_architecture('mobilenetv2').cost()
    tv = count_by_hooks(torchvision.models.mobilenet_v2(), (3, 224, 224))
    assert (ours.madds, ours.params) == tv == (300774272, 3504872)


def test_proxylessnas_mobile_equals_nni_hub_exactly():
    from nni.nas.hub.pytorch import ProxylessNAS
    hub = ProxylessNAS.load_searched_model('proxyless-mobile')
    ours = network_architecture('proxylessnas-mobile').cost()
    assert (ours.madds, ours.params) == count_by_hooks(hub, (3, 224, 224)) == (320427584, 4080512)


@pytest.mark.parametrize('name', ['mobilenetv2', 'proxylessnas-mobile'])
def test_presets_equal_external_profilers(name):
    from ptflops import get_model_complexity_info
    import torchinfo
    arch = network_architecture(name)
    net = build_network(name)
    ours = arch.cost()
    assert count_by_hooks(net, arch.skeleton.input_shape) == tuple(ours)
    madds, params = get_model_complexity_info(net, arch.skeleton.input_shape, as_strings=False,
                                              print_per_layer_stat=False, backend='aten')
    # ptflops(aten) adds the classifier bias (1000 adds); otherwise identical
    assert madds - ours.madds == arch.skeleton.num_classes
    assert params == ours.params
    info = torchinfo.summary(net, (1,) + arch.skeleton.input_shape, verbose=0)
    assert info.total_params == ours.params
    assert abs(info.total_mult_adds / ours.madds - 1) < 2e-4   # torchinfo also counts BN affine


@pytest.mark.parametrize('name', sorted(n for n, s in SKELETON_PRESETS.items() if s.input_shape[1] <= 64))
def test_every_skeleton_reference_network_cost_is_exact(name):
    sk = Skeleton.preset(name)
    arch = Architecture.uniform(sk, reference_cell(sk))
    net = arch.build()
    assert count_by_hooks(net, sk.input_shape) == tuple(arch.cost())
    assert net(torch.randn(2, *sk.input_shape)).shape == (2, sk.num_classes)


def test_skeleton_groups_and_labels():
    sk = Skeleton.preset('proxylessnas-mobile')
    labels = sk.labels
    assert labels[0] == 's1_b0' and labels[-1] == 's6_b0' and len(labels) == 21
    groups = sk.groups()
    assert len(groups) == 11            # the authors' released space: 11 layer groups
    assert [b.label for b in groups['s1_rest']] == ['s1_b1', 's1_b2', 's1_b3']
    per_layer = sk.replace(grouping='layer').groups()
    assert len(per_layer) == 21
    zero_ok = {b.label for b in sk.blocks() if b.zero_allowed}
    assert 's1_b0' not in zero_ok and 's1_b1' in zero_ok
    assert Skeleton.from_dict(json.loads(json.dumps(sk.to_dict()))) == sk


def test_bad_skeleton_and_arch_errors():
    with pytest.raises(SkeletonError, match='unknown skeleton'):
        Skeleton.preset('nope')
    with pytest.raises(SkeletonError, match='grouping'):
        Skeleton.preset('tiny-8', grouping='per-stage')
    sk = Skeleton.preset('tiny-8')
    with pytest.raises(ArchError, match='missing blocks'):
        Architecture(sk, {'s1_b0': 'zero'})
    with pytest.raises(ArchError, match='cannot be "zero"'):
        Architecture(sk, {l: 'zero' for l in sk.labels})
    arch = Architecture(sk, {l: ('zero' if l == 's2_b1' else 'e3_relu6:0-1=dw5x5') for l in sk.labels})
    assert Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))).sample == arch.sample
    # a zero block removes exactly that block's cost
    spec = {b.label: b for b in sk.blocks()}['s2_b1']
    full = Architecture.uniform(sk, arch.choices['s1_b0']).cost().madds
    c = arch.choices['s1_b0'].cost(spec.c_in, spec.c_out, 1, spec.height, spec.width).madds
    assert full - arch.cost().madds == c


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'autospace_nni.cli', *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_cost_json():
    r = _cli('cost', '--preset', 'proxylessnas-mobile', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {'madds': 320427584, 'params': 4080512}
    r = _cli('cost', '--skeleton', 'tiny-8', '--json')
    sk = Skeleton.preset('tiny-8')
    assert json.loads(r.stdout) == dict(zip(['madds', 'params'], Architecture.uniform(sk, reference_cell(sk)).cost()))


def test_cli_cost_arch_file_and_errors(tmp_path):
    sk = Skeleton.preset('tiny-8')
    arch = Architecture.uniform(sk, reference_cell(sk).with_genes(expand=3))
    p = tmp_path / 'arch.json'
    p.write_text(json.dumps(arch.to_dict()))
    r = _cli('cost', '--arch', str(p), '--json')
    assert json.loads(r.stdout)['madds'] == arch.cost().madds
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'skeleton': 'tiny-8', 'sample': {**arch.sample, 's1_b0': 'e6_relu6:0-1=dw9x9'}}))
    r = _cli('cost', '--arch', str(bad))
    assert r.returncode == 2
    assert "unknown op 'dw9x9'" in r.stderr and 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli('cost', '--preset', 'mobilenetv2', '--skeleton', 'tiny-8')
    assert r.returncode == 2 and 'exactly one' in r.stderr
