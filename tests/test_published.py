"""The published networks against the libraries' own models: the same MAdds and params by a hook count of
the library model, the same outputs under the library model's weights, and within 2% of the papers."""

import json

import pytest
import torch

from autospace_nni.cells import count_by_hooks
from autospace_nni.errors import ArchError
from autospace_nni.library_weights import library_model, load_library_weights, map_state_dict
from autospace_nni.presets import LIBRARY_MODELS, NETWORK_PRESETS, PAPER_FIGURES, build_network, network_architecture
from autospace_nni.space import Skeleton

NETWORKS = sorted(NETWORK_PRESETS)

# the hook counts of the library models themselves (torchvision 0.29.1, timm 1.0.31, NNI 3.0): known answers
LIBRARY_COUNTS = {
    'mobilenetv2': (300774272, 3504872),
    'proxylessnas-mobile': (320427584, 4080512),
    'efficientnet-b0': (385814752, 5288548),
    'mnasnet-a1': (311579072, 3887038),
    'mobilenetv3-large': (216589760, 5483032),
    'mobilenetv3-small': (56510400, 2542856),
}


def _library(name):
    if LIBRARY_MODELS[name][0] == 'timm':
        pytest.importorskip('timm')
    return library_model(name)


def test_every_network_has_a_library_model_and_paper_figures():
    assert set(LIBRARY_MODELS) == set(NETWORK_PRESETS) == set(PAPER_FIGURES) == set(LIBRARY_COUNTS)


@pytest.mark.parametrize('name', NETWORKS)
def test_cost_equals_the_library_models_hook_count(name):
    arch = network_architecture(name)
    ours = tuple(arch.cost())
    assert count_by_hooks(_library(name), arch.skeleton.input_shape) == ours == LIBRARY_COUNTS[name]
    assert count_by_hooks(arch.build(), arch.skeleton.input_shape) == ours


NEW = ['efficientnet-b0', 'mnasnet-a1', 'mobilenetv3-large', 'mobilenetv3-small']


@pytest.mark.parametrize('name', NEW)   # MobileNetV2/ProxylessNAS: test_presets (their papers round params)
def test_cost_is_within_two_percent_of_the_paper(name):
    cost, paper = network_architecture(name).cost(), PAPER_FIGURES[name]
    assert abs(cost.madds / paper['madds'] - 1) < 0.02, cost
    assert abs(cost.params / paper['params'] - 1) < 0.02, cost


@pytest.mark.parametrize('name', NETWORKS)
def test_same_outputs_under_the_library_models_weights(name):
    lib = _library(name)
    torch.manual_seed(0)
    with torch.no_grad():   # batch-norm statistics and affine terms away from their defaults
        for m in lib.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    net = load_library_weights(build_network(name), lib)
    lib.eval(), net.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected, got = lib(x), net(x)
    assert expected.abs().max() > 1e-3                      # not a trivially zero output
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6), (got - expected).abs().max()


def test_mapping_refuses_a_different_network():
    with pytest.raises(ArchError, match='not the same layers'):
        map_state_dict(library_model('mobilenetv3-small'), build_network('mobilenetv3-large'))
    with pytest.raises(ArchError, match='no library model'):
        library_model('resnet50')


@pytest.mark.parametrize('name', NEW)
def test_new_presets_are_skeletons_too(name):
    sk = Skeleton.preset(name)
    assert network_architecture(name).skeleton == sk
    assert Skeleton.from_dict(json.loads(json.dumps(sk.to_dict()))) == sk
    # a small input: the skeleton builds and runs anywhere (what a learned space on it would train on)
    small = sk.replace(input_shape=(3, 32, 32), num_classes=10)
    from autospace_nni.space import Architecture, reference_cell
    net = Architecture.uniform(small, reference_cell(small)).build()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_old_skeleton_documents_are_unchanged():
    # the fields added for MobileNetV3 (head_fc, bn_eps) are left out at their defaults
    d = Skeleton.preset('mobile-28').to_dict()
    assert 'head_fc' not in d and 'bn_eps' not in d
    d3 = Skeleton.preset('mobilenetv3-large').to_dict()
    assert (d3['head_fc'], d3['bn_eps']) == (1280, 1e-3)


def test_cli_names_mirror_the_presets():
    from autospace_nni.cli_parser import NETWORK_NAMES, SKELETON_NAMES
    from autospace_nni.space import SKELETON_PRESETS
    assert set(NETWORK_NAMES) == set(NETWORK_PRESETS) and set(SKELETON_NAMES) == set(SKELETON_PRESETS)


def test_reference_network_resolves_to_each_groups_cell_and_refuses_a_mismatch():
    from autospace_nni import ExplorationSpace
    from autospace_nni.presets import network_references
    from autospace_nni.strategy.admission import resolve_references
    small = Skeleton.preset('efficientnet-b0', input_shape=(1, 8, 8), num_classes=10)
    refs = resolve_references('efficientnet-b0', ExplorationSpace(small))
    arch = network_architecture('efficientnet-b0')
    for group, blocks in small.groups().items():
        assert refs[group] == arch.choices[blocks[0].label]
    assert str(refs['s2_first']) == 'e6_swish_sei:0-1=dw5x5' and str(refs['s1_rest']) == 'e6_swish_sei:0-1=dw3x3'
    # per block with grouping="layer": each block its own reference
    per_layer = network_references('mobilenetv3-large', Skeleton.preset('mobilenetv3-large', grouping='layer'))
    assert str(per_layer['s3_b1']) == 'e2.5_hswish:0-1=dw3x3' and str(per_layer['s3_b3']) == 'e2.3_hswish:0-1=dw3x3'
    with pytest.raises(ArchError, match=r"block s1_b0 is 16->24 stride 2 here and 16->32 stride 2 there"):
        network_references('proxylessnas-mobile', Skeleton.preset('mobilenetv2'))
    from autospace_nni.config import AutoSpaceConfig
    from autospace_nni.errors import OptionError
    with pytest.raises(OptionError, match='a network preset'):
        AutoSpaceConfig(reference='efficientnet-b9')


def test_evolve_against_efficientnet_b0_on_digits():
    """A real (one-iteration) evolution on EfficientNet-B0's skeleton at digits' 8x8 input: the reference
    branch of every group is EfficientNet-B0's block, and the learned space lists it."""
    import logging
    import warnings
    warnings.simplefilter('ignore')
    logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)
    from autospace_nni import AutoSpace, ExplorationSpace, load_dataset, make_evaluator
    sk = Skeleton.preset('efficientnet-b0', input_shape=(1, 8, 8), num_classes=10)
    torch.manual_seed(0)
    strategy = AutoSpace(reference='efficientnet-b0', population_size=2, sample_k=1, top_m=1, warmup_iterations=0,
                         patience=0, iterations=1, n_nodes=2, ops=('dw3x3', 'dw5x5'), expand_choices=(6,),
                         act_choices=('swish',), se_choices=(False,), seed=0)
    learned = strategy.evolve(ExplorationSpace(sk), make_evaluator(load_dataset('digits', seed=0), max_epochs=1,
                                                                   batch_size=64, seed=0))
    arch = network_architecture('efficientnet-b0')
    for group, blocks in sk.groups().items():
        assert learned.references[group] == arch.choices[blocks[0].label]
        listed = [c.cell for c in learned.groups[group] if c.reference]
        assert listed == [arch.choices[blocks[0].label]]
    assert learned.provenance['options']['reference'] == 'efficientnet-b0'
    # the CLI's way there: --skeleton efficientnet-b0 --fit-input --reference efficientnet-b0
    from autospace_nni.cli_parser import build_parser, evolve_config
    args = build_parser().parse_args(['evolve', '--skeleton', 'efficientnet-b0', '--fit-input',
                                      '--reference', 'efficientnet-b0', '--out', 'unused'])
    cfg = evolve_config(args)
    assert cfg.fit_input and cfg.reference == 'efficientnet-b0'


@pytest.mark.parametrize('path', ['docs/results/space_quality_cpu/evolve_ref-default/learned_space.json',
                                  'experiment_configs/learned_space_digits.json'])
def test_old_learned_spaces_read_to_the_same_document(path):
    """Learned spaces written before the new genes load to the same cells and write back the same document."""
    from pathlib import Path
    from autospace_nni import LearnedSpace
    file = Path(__file__).resolve().parents[1] / path
    original = json.loads(file.read_text())
    assert json.loads(json.dumps(LearnedSpace.load(file).to_dict())) == original
