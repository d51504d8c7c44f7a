"""A zero-cost proxy: SynFlow (Tanaka et al., 2020; used as a NAS proxy by Abdelfattah et al., 2021).

It scores an untrained network without data: with every weight replaced by its absolute value and an
all-ones input, ``R = sum(f(1))``, and the score is ``sum |θ · dR/dθ|``. It is a baseline for the
fitness estimators (``benchmarks/fitness_quality.py``), not one of them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ['synflow']


@torch.no_grad()
def _signs(net: nn.Module) -> dict:
    signs = {}
    for name, t in net.state_dict().items():
        if t.is_floating_point():
            signs[name] = torch.sign(t)
            t.abs_()
    return signs


def synflow(net: nn.Module, input_shape: Sequence[int]) -> float:
    """log10 of the SynFlow score of ``net`` (in eval mode, float64, on a copy's state: ``net`` is left
    as it was)."""
    import copy
    net = copy.deepcopy(net).double().eval()
    _signs(net)
    net.zero_grad(set_to_none=True)
    x = torch.ones(1, *input_shape, dtype=torch.float64)
    net(x).sum().backward()
    with torch.no_grad():
        total = sum(float((p * p.grad).abs().sum()) for p in net.parameters() if p.grad is not None)
    return math.log10(total) if total > 0 else float('-inf')
