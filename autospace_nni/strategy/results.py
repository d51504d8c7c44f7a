"""What an evolution leaves: each group's learned cells, and the options as the run resolved them.

Pure functions of the evolution loop and the strategy's public attributes; the strategy adds the
provenance and wraps them in a :class:`~autospace_nni.space.learned.LearnedSpace`.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

from ..cells.genome import Cell
from ..config import AutoSpaceConfig
from ..space.learned import LearnedCell
from .loop import EvolutionLoop

__all__ = ['learned_groups', 'resolved_options']


def learned_groups(loop: EvolutionLoop, layout, references: Optional[Dict[str, Cell]], *, keep_reference: bool,
                   min_evals: int) -> Tuple[Dict[str, List[LearnedCell]], Dict[str, List[str]]]:
    """Each group's top-M cells (plus its reference cell with ``keep_reference``), named as the user names
    them in an adopted space; and, by group, the learned cells with fewer than ``min_evals`` scores."""
    groups, thin_evidence = {}, {}
    for g, pop in loop.populations.items():
        # the reference branch is listed by keep_reference; every other member competes on fitness
        # (in an adopted space that includes the user's other candidates)
        top = loop.learned(g)
        cells = [LearnedCell(m.cell, m.fitness, m.reference, layout.user_name(g, m.cell)) for m in top]
        # cells short of min_evals rank after all others; a short run may still need them to fill M
        thin = [str(m.cell) for m in top if m.evals < min_evals]
        if thin:
            thin_evidence[g] = thin
        if keep_reference and references is not None:
            ref = references[g]
            if ref.key not in {c.cell.key for c in cells}:
                member = pop.find(ref.key)
                cells.append(LearnedCell(ref, member.fitness if member else 1.0, True, layout.user_name(g, ref)))
        groups[g] = cells
    return groups, thin_evidence


def resolved_options(strategy) -> dict:
    """Every option of ``strategy`` as plain JSON values, resolved where the run resolved it: the reference
    option as the cells it chose, ``seed_cells`` as cell texts, everything else as the strategy holds it."""
    out = {}
    for name in AutoSpaceConfig.names():
        if name == 'reference':
            opt = strategy.reference_option
            value = (None if opt is None else opt if isinstance(opt, str) else
                     {g: str(c) for g, c in (strategy.references or {}).items()} or str(opt))
        elif name == 'seed_cells':
            opt = strategy.seed_cells
            value = None if opt is None else ({g: [str(c) for c in v] for g, v in opt.items()}
                                              if isinstance(opt, dict) else [str(c) for c in opt])
        else:
            value = getattr(strategy, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return json.loads(json.dumps(out, default=str))
