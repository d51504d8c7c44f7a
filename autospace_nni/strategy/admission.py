"""What enters a population: the reference cells, the planted seed cells, and the hard budget filter.

Pure functions of the strategy's options and the space (no training state), priced analytically.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from ..cells.genome import Cell
from ..space.network import choice_cost
from .evolution import CellSampler

__all__ = ['resolve_references', 'seed_cells_for', 'cheapest_costs', 'admissible_fn']


def resolve_references(option, space) -> Optional[Dict[str, Cell]]:
    """The reference cell of every group for the ``reference`` option (None: the no-reference ablation)."""
    if option is None:
        return None
    if isinstance(option, str) and option == 'default':
        return dict(space.references)
    from ..presets import NETWORK_PRESETS, network_references
    if isinstance(option, str) and option in NETWORK_PRESETS:
        return {**space.references, **network_references(option, space.layout)}
    if isinstance(option, (str, Cell)):
        cell = option if isinstance(option, Cell) else Cell.parse(option)
        return {g: cell for g in space.skeleton.groups()}
    if isinstance(option, dict):
        refs = dict(space.references)
        for g, c in option.items():
            if g not in refs:
                raise ValueError(f'reference for unknown group {g!r}; groups: {", ".join(refs)}')
            refs[g] = c if isinstance(c, Cell) else Cell.parse(c)
        return refs
    raise ValueError(f"reference must be 'default', None, a network preset, a cell or a {{group: cell}} dict, got "
                     f"{option!r}")


def seed_cells_for(option, skeleton, group: str) -> List[Cell]:
    """The ``seed_cells`` option's cells for ``group``."""
    if option is None:
        return []
    if isinstance(option, dict):
        unknown = [g for g in option if g not in skeleton.groups()]
        if unknown:
            raise ValueError(f'seed_cells for unknown groups {unknown}; groups: {", ".join(skeleton.groups())}')
        option = option.get(group, [])
    return [c if isinstance(c, Cell) else Cell.parse(c) for c in option]


def cheapest_costs(skeleton, sampler: CellSampler, extra_candidates: Callable[[str], list] = lambda g: []
                   ) -> Dict[str, int]:
    """Each block's cheapest candidate: ``zero`` where the block may be skipped, else the cheapest
    single-edge cell the sampler can draw (or a cheaper one of ``extra_candidates(group)``)."""
    cheap = [Cell(((0, 1, op),), min(sampler.expand_choices), act, False)
             for op in sampler.ops for act in sampler.act_choices]
    floor = {}
    for b in skeleton.blocks():
        if b.zero_allowed:
            floor[b.label] = 0
            continue
        floor[b.label] = min(choice_cost(c, b).madds for c in cheap + list(extra_candidates(b.group)))
    return floor


def admissible_fn(skeleton, group: str, *, fixed_madds: int, floor: Dict[str, int], limit: float
                  ) -> Callable[[Cell], bool]:
    """The hard filter: can some network that uses ``cell`` in every block of ``group`` stay within
    ``limit`` MAdds, with the cheapest candidates (``floor``) everywhere else?"""
    specs = skeleton.groups()[group]
    elsewhere = fixed_madds + sum(v for label, v in floor.items() if label not in {b.label for b in specs})

    def admissible(cell: Cell) -> bool:
        return elsewhere + sum(choice_cost(cell, b).madds for b in specs) <= limit
    return admissible
