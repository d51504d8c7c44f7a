"""Published networks written in the cell language: the external check of the whole cost model.

=====================  =============================  ==========================
network                paper                          this package (224x224)
=====================  =============================  ==========================
mobilenetv2            300M MAdds, 3.4M params        see ``autospace-nni cost``
proxylessnas-mobile    320M MAdds, 4.1M params        see ``autospace-nni cost``
=====================  =============================  ==========================
"""

from __future__ import annotations

from torch import nn

from .errors import ArchError
from .space.network import Architecture
from .space.skeleton import Skeleton, reference_cell

__all__ = ['NETWORK_PRESETS', 'network_architecture', 'build_network', 'PAPER_FIGURES']

PAPER_FIGURES = {
    'mobilenetv2': {'madds': 300e6, 'params': 3.4e6},
    'proxylessnas-mobile': {'madds': 320e6, 'params': 4.1e6},
}

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


NETWORK_PRESETS = {
    'mobilenetv2': _mobilenetv2,
    'proxylessnas-mobile': _proxylessnas_mobile,
}


def network_architecture(name: str) -> Architecture:
    try:
        return NETWORK_PRESETS[name]()
    except KeyError:
        raise ArchError(f'unknown network preset {name!r}; known: {", ".join(NETWORK_PRESETS)}') from None


def build_network(name: str) -> nn.Module:
    """The published network ``name`` as a plain ``nn.Module``."""
    return network_architecture(name).build()
