"""A space learned on a user's NNI model space, back as an NNI model space: the user's space with each evolved
``LayerChoice``'s candidates replaced by the learned ones (:func:`replace_choices`), and the context in which
a trial's rebuild of that space resolves a choice to a learned cell (:class:`learned_choices`). The entry
points that parse a learned document live with it, in :mod:`autospace_nni.space.learned`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Dict, Optional

from torch import nn

from nni.mutable import frozen_context
from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from ..cells.fixed import FixedCandidate
from ..errors import LearnedSpaceError
from .layout import AdoptedLayout

__all__ = ['replace_choices', 'learned_choices', 'class_path', 'parent_and_name']


def class_path(obj) -> str:
    return f'{type(obj).__module__}.{type(obj).__qualname__}'


def parent_and_name(root: nn.Module, path: str):
    parent_path, _, name = path.rpartition('.')
    return (root.get_submodule(parent_path) if parent_path else root), name


class learned_choices:
    """While building a user's space under a model context, a ``LayerChoice`` whose label has a learned
    cell chosen returns that cell's block instead of one of the user's candidates."""

    def __init__(self, chosen: Dict[str, Optional[nn.Module]]):
        self.chosen = {k: v for k, v in chosen.items() if v is not None}

    def __enter__(self):
        self.original = LayerChoice.__dict__['create_fixed_module']
        original, chosen = self.original.__func__, self.chosen

        def create_fixed_module(cls, sample, candidates, *, weights=None, label=None):
            for full, module in chosen.items():
                if label is not None and (full == label or full.endswith('/' + str(label))):
                    return module
            return original(cls, sample, candidates, weights=weights, label=label)
        LayerChoice.create_fixed_module = classmethod(create_fixed_module)
        return self

    def __exit__(self, *exc):
        LayerChoice.create_fixed_module = self.original
        return False


def replace_choices(learned, base: ModelSpace) -> ModelSpace:
    """``base`` (the user's space) with each evolved ``LayerChoice``'s candidates replaced by the learned
    ones. User candidates keep their names and modules; evolved cells are named by their text."""
    layout: AdoptedLayout = learned.layout
    if not isinstance(base, ModelSpace):
        raise LearnedSpaceError(f'base must be the NNI ModelSpace the space was learned on ({layout.class_path}), '
                                f'got {type(base).__name__}')
    if class_path(base) != layout.class_path:
        raise LearnedSpaceError(f'this space was learned on {layout.class_path}, not {class_path(base)}')
    space = copy.deepcopy(base)
    with frozen_context():
        for spec in layout.blocks():
            path = layout.paths[spec.label]
            try:
                old = space.get_submodule(path)
            except AttributeError:
                old = None
            if not isinstance(old, LayerChoice) or old.label != spec.label:
                raise LearnedSpaceError(f'{layout.class_path} has no LayerChoice {spec.label!r} at {path}: '
                                        'was it built with other arguments?')
            names = {str(n) for n in old.names}
            candidates = OrderedDict()
            for c in learned.groups[spec.group]:
                name = c.name or str(c.cell)
                if c.name is not None and c.name in names:
                    candidates[name] = copy.deepcopy(old[c.name if c.name in old.names else _orig_name(old, c.name)])
                elif isinstance(c.cell, FixedCandidate):
                    raise LearnedSpaceError(f'{spec.label}: the base space has no candidate {c.cell.name!r}')
                else:
                    candidates[name] = c.cell.build(spec.c_in, spec.c_out, spec.stride)
            parent, attr = parent_and_name(space, path)
            setattr(parent, attr, LayerChoice(candidates, label=spec.label))
    return space


def _orig_name(lc: LayerChoice, name: str):
    for n in lc.names:
        if str(n) == name:
            return n
    raise KeyError(name)
