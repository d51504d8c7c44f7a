"""The strategy's hold on the supernet: its AutoSpace mixed layers, by layer group.

What the weight pool of every mixed layer must cover (:func:`pool_options`, read by the mutation hook),
which cells each layer runs (:func:`set_branches`), whether α learns (:func:`set_alpha_learning`), and the
expected cost under the current α (:func:`expected_cost`). Functions of the layers and plain values only.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import torch
from torch import nn

from ..cells.genome import Cell
from ..space.supernet import AutoSpaceMixedLayer
from .evolution import CellSampler

__all__ = ['Layers', 'pool_options', 'find_layers', 'set_branches', 'set_alpha_learning', 'expected_cost']

Layers = Dict[str, List[AutoSpaceMixedLayer]]


def pool_options(sampler: CellSampler, cells: Iterable, references: Optional[Dict[str, Cell]], *,
                 sample_k: int, pin: Optional[dict]) -> dict:
    """The ``autospace`` options of the mutation hooks: a weight pool wide enough for every cell the sampler
    can draw and every cell already in a population (``cells``) or a reference; the branch count; and the
    values at which an adopted space's other mutables are pinned."""
    everything = [c for c in list(cells) + list((references or {}).values()) if isinstance(c, Cell)]
    return {
        'max_nodes': max([sampler.n_nodes] + [c.n_nodes for c in everything]),
        'ops': sorted(set(sampler.ops) | {op for c in everything for _, _, op in c.edges}),
        'expand_choices': sorted(set(sampler.expand_choices) | {c.expand for c in everything}),
        'acts': sorted(set(sampler.act_choices) | {c.act for c in everything}),
        'se': bool(any(sampler.se_choices) or any(c.se for c in everything)),
        'se_styles': sorted({'exp'} | {c.se_style for c in everything if c.se}),
        'max_branches': sample_k + (1 if references is not None else 0),
        'pin': pin,
    }


def find_layers(supernet: nn.Module) -> Layers:
    layers: Layers = {}
    for m in supernet.modules():
        if isinstance(m, AutoSpaceMixedLayer):
            layers.setdefault(m.group, []).append(m)
    return layers


def set_branches(layers: Layers, branches: Dict[str, List[Cell]], references: Optional[Dict[str, Cell]], *,
                 estimator, generator: torch.Generator) -> None:
    """Each group's layers run ``branches[group]`` (plus the group's reference), weighted as the fitness
    estimator needs, drawing single paths from ``generator``."""
    for g, group_layers in layers.items():
        ref = references[g] if references is not None else None
        for layer in group_layers:
            layer.set_branches(branches[g], ref)
            layer.path_mode = estimator.arch_path_mode or 'sum'
            layer.weight_path_mode = estimator.weight_path_mode
            layer.generator = generator


def set_alpha_learning(layers: Layers, learn: bool) -> None:
    """α learns (``learn``), or the paths are weighted uniformly and α stays frozen (warm-up)."""
    for group_layers in layers.values():
        for layer in group_layers:
            layer.uniform = not learn
            layer._arch_alpha.requires_grad_(learn)


def expected_cost(layers: Layers, profiler) -> float:
    """The profiler's expected cost under softmax(α) of every layer."""
    probs = {}
    for group_layers in layers.values():
        for layer in group_layers:
            probs[layer.label] = {k: float(v.detach()) for k, v in layer.export_probs({})[layer.label].items()}
    return float(profiler.expectation(probs))
