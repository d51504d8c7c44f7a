"""The published networks' library models, and their weights in our networks.

:func:`library_model` builds the model a network preset is checked against (torchvision, timm or NNI's hub),
without downloading any weights. :func:`load_library_weights` copies a library model's state dict into the
network we build from the cell language: both register their layers in forward order (stem, blocks as expand
→ depthwise → SE → project, head, classifier), so the mapping pairs the two state dicts entry by entry and
refuses, naming both keys, the first pair whose shapes differ. With the weights of, say, torchvision's
``efficientnet_b0``, ``build_network('efficientnet-b0')`` computes the same outputs (the tests hold it).
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from .errors import ArchError
from .presets import LIBRARY_MODELS

__all__ = ['library_model', 'load_library_weights', 'map_state_dict']


def library_model(name: str) -> nn.Module:
    """The library's own model of network preset ``name``, randomly initialised (nothing is downloaded).
    timm is an optional dependency (the ``test`` extra); without it, MnasNet-A1 raises ``ImportError``."""
    try:
        library, model = LIBRARY_MODELS[name]
    except KeyError:
        raise ArchError(f'no library model for {name!r}; known: {", ".join(LIBRARY_MODELS)}') from None
    if library == 'torchvision':
        import torchvision
        return getattr(torchvision.models, model)(weights=None)
    if library == 'timm':
        try:
            import timm
        except ImportError:
            raise ImportError(f'{name} is checked against timm\'s {model}: pip install timm') from None
        return timm.create_model(model, pretrained=False)
    from nni.nas.hub.pytorch import ProxylessNAS
    return ProxylessNAS.load_searched_model(model, pretrained=False)


def map_state_dict(source: nn.Module, target: nn.Module) -> Dict[str, torch.Tensor]:
    """``source``'s state dict under ``target``'s keys, paired in registration order (shapes checked)."""
    src, dst = source.state_dict(), target.state_dict()
    if len(src) != len(dst):
        raise ArchError(f'the two networks have {len(src)} and {len(dst)} state-dict entries: not the same layers')
    mapped = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if sv.shape != dv.shape:
            raise ArchError(f'{sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)}: not the same layers')
        mapped[dk] = sv
    return mapped


def load_library_weights(target: nn.Module, source: nn.Module) -> nn.Module:
    """Load ``source``'s weights (and batch-norm statistics) into ``target``; returns ``target``."""
    target.load_state_dict(map_state_dict(source, target))
    return target
