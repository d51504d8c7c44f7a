"""Published networks written in the cell language: the external check of the whole cost model.

Each network is its skeleton preset plus one cell per block; the tests hold its analytic MAdds and params
equal to a hook count of the library's own model (torchvision, timm or NNI's hub), its outputs equal to that
model's under the same weights (:mod:`autospace_nni.library_weights`), and both within 2% of the paper
(:data:`PAPER_FIGURES`). ``autospace-nni cost --preset NAME`` prints them; the README's cost table is written
by ``benchmarks/published_costs.py``.
"""

from __future__ import annotations

from torch import nn

from .errors import ArchError
from .space.network import Architecture
from .space.skeleton import Skeleton, reference_cell

__all__ = ['NETWORK_PRESETS', 'network_architecture', 'network_references', 'build_network', 'PAPER_FIGURES',
           'LIBRARY_MODELS']

#: the figures each network's paper gives (224x224 ImageNet)
PAPER_FIGURES = {
    'mobilenetv2': {'madds': 300e6, 'params': 3.4e6},
    'proxylessnas-mobile': {'madds': 320e6, 'params': 4.1e6},
    'efficientnet-b0': {'madds': 390e6, 'params': 5.3e6},
    'mnasnet-a1': {'madds': 312e6, 'params': 3.9e6},
    'mobilenetv3-large': {'madds': 219e6, 'params': 5.4e6},
    'mobilenetv3-small': {'madds': 56e6, 'params': 2.5e6},
}

#: the library model each network is checked against: (library, constructor name)
LIBRARY_MODELS = {
    'mobilenetv2': ('torchvision', 'mobilenet_v2'),
    'proxylessnas-mobile': ('nni', 'proxyless-mobile'),
    'efficientnet-b0': ('torchvision', 'efficientnet_b0'),
    'mnasnet-a1': ('timm', 'semnasnet_100'),
    'mobilenetv3-large': ('torchvision', 'mobilenet_v3_large'),
    'mobilenetv3-small': ('torchvision', 'mobilenet_v3_small'),
}

# The per-stage blocks of the networks below, as (repeats, cell) runs in the cell language.
_EFFICIENTNET_B0 = [[(2, 'e6_swish_sei:0-1=dw3x3')], [(2, 'e6_swish_sei:0-1=dw5x5')],
                    [(3, 'e6_swish_sei:0-1=dw3x3')], [(3, 'e6_swish_sei:0-1=dw5x5')],
                    [(4, 'e6_swish_sei:0-1=dw5x5')], [(1, 'e6_swish_sei:0-1=dw3x3')]]
_MNASNET_A1 = [[(2, 'e6_relu:0-1=dw3x3')], [(3, 'e3_relu_sei:0-1=dw5x5')], [(4, 'e6_relu:0-1=dw3x3')],
               [(2, 'e6_relu_sei:0-1=dw3x3')], [(3, 'e6_relu_sei:0-1=dw5x5')], [(1, 'e6_relu:0-1=dw3x3')]]
# MobileNetV3's expanded widths are given per block (the paper's table 1 and 2); as ratios of the block input
# they are the decimals timm writes (200 / 80 = 2.5, 184 / 80 = 2.3, 88 / 24 = 3.67 rounded by make_divisible)
_MOBILENETV3_LARGE = [[(1, 'e4_relu:0-1=dw3x3'), (1, 'e3_relu:0-1=dw3x3')], [(3, 'e3_relu_sev3:0-1=dw5x5')],
                      [(1, 'e6_hswish:0-1=dw3x3'), (1, 'e2.5_hswish:0-1=dw3x3'), (2, 'e2.3_hswish:0-1=dw3x3')],
                      [(2, 'e6_hswish_sev3:0-1=dw3x3')], [(3, 'e6_hswish_sev3:0-1=dw5x5')]]
_MOBILENETV3_SMALL = [[(1, 'e1_relu_sev3:0-1=dw3x3')], [(1, 'e4.5_relu:0-1=dw3x3'), (1, 'e3.67_relu:0-1=dw3x3')],
                      [(1, 'e4_hswish_sev3:0-1=dw5x5'), (2, 'e6_hswish_sev3:0-1=dw5x5')],
                      [(2, 'e3_hswish_sev3:0-1=dw5x5')], [(3, 'e6_hswish_sev3:0-1=dw5x5')]]

# ProxylessNAS-mobile as released (stage, block) -> MBConv kernel/expand, "zero" = skipped block.
_PROXYLESS_MOBILE = [
    ['k5e3', 'k3e3', 'zero', 'zero'],
    ['k7e3', 'k3e3', 'k5e3', 'k5e3'],
    ['k7e6', 'k5e3', 'k5e3', 'k5e3'],
    ['k5e6', 'k5e3', 'k5e3', 'k5e3'],
    ['k7e6', 'k7e6', 'k7e3', 'k7e3'],
    ['k7e6'],
]


def _mbconv(code: str, act: str = 'relu6') -> str:
    if code == 'zero':
        return code
    k, e = code[1], code[3]
    return f'e{e}_{act}:0-1=dw{k}x{k}'


def _mobilenetv2() -> Architecture:
    sk = Skeleton.preset('mobilenetv2')
    return Architecture.uniform(sk, reference_cell(sk))


def _proxylessnas_mobile() -> Architecture:
    sk = Skeleton.preset('proxylessnas-mobile-released')
    choices = {}
    for si, stage in enumerate(_PROXYLESS_MOBILE, 1):
        for bi, code in enumerate(stage):
            choices[f's{si}_b{bi}'] = _mbconv(code)
    return Architecture(sk, choices)


def _staged(skeleton: str, stages) -> Architecture:
    choices = {}
    for si, runs in enumerate(stages, 1):
        cells = [cell for n, cell in runs for _ in range(n)]
        choices.update({f's{si}_b{bi}': cell for bi, cell in enumerate(cells)})
    return Architecture(Skeleton.preset(skeleton), choices)


NETWORK_PRESETS = {
    'mobilenetv2': _mobilenetv2,
    'proxylessnas-mobile': _proxylessnas_mobile,
    'efficientnet-b0': lambda: _staged('efficientnet-b0', _EFFICIENTNET_B0),
    'mnasnet-a1': lambda: _staged('mnasnet-a1', _MNASNET_A1),
    'mobilenetv3-large': lambda: _staged('mobilenetv3-large', _MOBILENETV3_LARGE),
    'mobilenetv3-small': lambda: _staged('mobilenetv3-small', _MOBILENETV3_SMALL),
}


def network_references(name: str, layout) -> dict:
    """Network preset ``name`` as the reference architecture of a search on ``layout`` (a skeleton): each
    layer group's reference cell is the network's cell in the group's first block (``zero`` blocks skipped;
    a group the network skips altogether keeps no entry). The skeleton must match the network's block for
    block, in channels and strides; its input size and classes may differ (a 32x32 EfficientNet-B0)."""
    arch = network_architecture(name)
    theirs = {b.label: b for b in arch.skeleton.blocks()}
    refs = {}
    for group, blocks in layout.groups().items():
        for b in blocks:
            t = theirs.get(b.label)
            if t is None or (t.c_in, t.c_out, t.stride) != (b.c_in, b.c_out, b.stride):
                there = 'absent' if t is None else f'{t.c_in}->{t.c_out} stride {t.stride}'
                raise ArchError(f'reference network {name!r} does not match this skeleton: block {b.label} is '
                                f'{b.c_in}->{b.c_out} stride {b.stride} here and {there} there; use skeleton '
                                f'{arch.skeleton.name!r} (its input size and classes may be changed)')
        cells = [arch.choices[b.label] for b in blocks if arch.choices[b.label] != 'zero']
        if cells:
            refs[group] = cells[0]
    return refs


def network_architecture(name: str) -> Architecture:
    try:
        return NETWORK_PRESETS[name]()
    except KeyError:
        raise ArchError(f'unknown network preset {name!r}; known: {", ".join(NETWORK_PRESETS)}') from None


def build_network(name: str) -> nn.Module:
    """The published network ``name`` as a plain ``nn.Module``."""
    return network_architecture(name).build()
