"""The AutoSpace supernet layer (Eqn 3, docs/method.md) and its static weight pool.

Lightning builds its optimizers once, but the sampled cells change every iteration. So each searchable
block gets a :class:`SuperCell` that registers, up front, one module per (edge position, op, expand
ratio), plus one expand conv, SE and projection per expand ratio. A sampled cell is only a *selection*
of those modules: the parameter set never changes, a re-sampled or mutated cell inherits every weight it
shares with its parent (same edge position, op and expand ratio), and parameters that no sampled cell
uses get no gradient, so optimizers skip them.

Memory bound: per block, ``edges(max_nodes) x parametric ops x expand ratios`` modules, independent of
the population size and of the number of iterations. Activation genes are parameter-free and so share
weights; SE modules are keyed by (expand, act) because their gate depends on the activation.
"""

from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.func import functional_call

from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from ..cells.block import SqueezeExcite, edge_name, expanded_width, run_cell
from ..cells.fixed import FixedCandidate, FixedModules, parse_candidate
from ..cells.genome import Cell
from ..cells.cost import conv_cost
from ..cells.ops import ConvBNAct, PRIMITIVES
from ..limits import check_build
from .skeleton import BlockSpec

__all__ = ['SuperCell', 'AutoSpaceMixedLayer', 'pool_size']


def _e(e) -> str:
    """An expand ratio as a module key: ``e6``, ``e2p5`` (module names cannot hold a dot)."""
    return f'e{e!r}'.replace('.', 'p')


def _edge_key(s: int, d: int, op: str, e: int) -> str:
    return f'{s}_{d}_{op}_{_e(e)}'


def _se_key(e, act: str, style: str) -> str:
    return f'{_e(e)}_{act}' + ('' if style == 'exp' else f'_{style}')


def _layout(module: nn.Module) -> list:
    return [(n, tuple(t.shape)) for n, t in (*module.named_parameters(), *module.named_buffers())]


def pool_params(spec: BlockSpec, max_nodes: int, ops: Sequence[str], expand_choices: Sequence[int], n_acts: int,
                se: bool, n_se_styles: int = 1) -> int:
    """An upper estimate of a :class:`SuperCell`'s parameters, priced without building it: per expand ratio, the
    expansion, every parametric op on every edge, an SE per activation and the projection."""
    total = 0
    edges = max_nodes * (max_nodes - 1) // 2
    for e in set(expand_choices):
        c_e = expanded_width(spec.c_in, e)
        total += conv_cost(spec.c_in, c_e, 1, 1, 1)[1] + conv_cost(c_e, spec.c_out, 1, 1, 1)[1]
        total += edges * n_acts * sum(PRIMITIVES[op].cost(c_e, 1, 8, 8)[1] for op in set(ops) if PRIMITIVES[op].parametric)
        total += (n_se_styles * n_acts * 2 * c_e * c_e) if se else 0
    return total


class SuperCell(nn.Module):
    """The weight pool of one block; ``forward(x, cell)`` runs ``cell`` on the pooled weights.

    Every pooled module is built by the same builder as the exported block's, with the cell's activation, so
    the supernet runs exactly the function :class:`~autospace_nni.cells.block.CellBlock` exports (both go
    through :func:`~autospace_nni.cells.block.run_cell`). Activation genes share weights: a module is built
    once with the first activation, and each other activation gets a parameter-free twin on the meta device
    that is called on the first one's parameters and buffers (``torch.func.functional_call``). A primitive
    whose parameters depend on its activation gets its own module per activation instead.
    """

    def __init__(self, spec: BlockSpec, *, max_nodes: int, ops: Sequence[str], expand_choices: Sequence[int],
                 acts: Sequence[str] = ('relu6', 'hswish'), se: bool = True, se_styles: Sequence[str] = ('exp',)):
        super().__init__()
        self.spec = spec
        self.max_nodes = max_nodes
        self.ops = tuple(sorted(set(ops)))
        self.expand_choices = tuple(sorted(set(expand_choices)))
        self.acts = tuple(dict.fromkeys(acts))
        self.se_styles = tuple(dict.fromkeys(se_styles)) if se else ()
        c_in, c_out, stride = spec.c_in, spec.c_out, spec.stride
        check_build(pool_params(spec, max_nodes, self.ops, self.expand_choices, len(self.acts), se,
                                len(self.se_styles)),
                    f'the weight pool of block {spec.label}')
        self._twins: Dict[Tuple[str, str], nn.Module] = {}     # (pool key, act) -> meta twin (not a submodule)
        self.expand = nn.ModuleDict()
        self.edges = nn.ModuleDict()
        self.free = nn.ModuleDict()   # parameter-free ops (skip, pools), built once per stride and activation
        for e in self.expand_choices:
            c_e = expanded_width(c_in, e)
            if c_e != c_in:
                self._pool(self.expand, _e(e), lambda a, c_e=c_e: ConvBNAct(c_in, c_e, 1, act=a))
            for d in range(1, max_nodes):
                for s in range(d):
                    for op in self.ops:
                        prim = PRIMITIVES[op]
                        st = stride if s == 0 else 1
                        if prim.parametric:
                            self._pool(self.edges, _edge_key(s, d, op, e),
                                       lambda a, prim=prim, c_e=c_e, st=st: prim.build(c_e, st, a))
                        else:
                            for a in self.acts:
                                if f'{op}_s{st}_{a}' not in self.free:
                                    self.free[f'{op}_s{st}_{a}'] = prim.build(c_e, st, a)
        self.se = nn.ModuleDict({_se_key(e, a, st): SqueezeExcite(expanded_width(c_in, e), a, st, c_in)
                                 for e in self.expand_choices for a in self.acts for st in self.se_styles})
        self.project = nn.ModuleDict({_e(e): ConvBNAct(expanded_width(c_in, e), c_out, 1, act=None)
                                      for e in self.expand_choices})
        self.use_shortcut = stride == 1 and c_in == c_out

    def _pool(self, pool: nn.ModuleDict, key: str, build) -> None:
        pool[key] = base = build(self.acts[0])
        for a in self.acts[1:]:
            with torch.device('meta'):
                twin = build(a)
            if _layout(twin) == _layout(base):
                self._twins[key, a] = twin
            else:       # its parameters depend on the activation: no sharing
                pool[f'{key}_{a}'] = build(a)

    def _run(self, pool: nn.ModuleDict, key: str, act: str, x: torch.Tensor) -> torch.Tensor:
        module, twin = self._module(pool, key, act), self._twins.get((key, act))
        if twin is None:
            return module(x)
        twin.train(module.training)
        return functional_call(twin, {**dict(module.named_parameters()), **dict(module.named_buffers())}, (x,))

    def supports(self, cell: Cell) -> Optional[str]:
        """``None`` if the pool can run ``cell``, else the reason it cannot."""
        if cell.expand not in self.expand_choices:
            return f'expand ratio {cell.expand} not in the pool {self.expand_choices}'
        if cell.n_nodes > self.max_nodes:
            return f'{cell.n_nodes} nodes > pool max_nodes {self.max_nodes}'
        if cell.act not in self.acts:
            return f'activation {cell.act} not in the pool {self.acts}'
        for _, _, op in cell.edges:
            if op not in self.ops:
                return f'op {op} not in the pool'
        if cell.se and not len(self.se):
            return 'SE is off in the pool'
        if cell.se and cell.se_style not in self.se_styles:
            return f'SE style {cell.se_style} not in the pool {self.se_styles}'
        return None

    def _module(self, pool: nn.ModuleDict, key: str, act: str) -> nn.Module:
        """The module that holds the weights ``key`` runs on under ``act``."""
        return pool[key] if (key, act) in self._twins or act == self.acts[0] else pool[f'{key}_{act}']

    def block_modules(self, cell: Cell) -> Dict[str, nn.Module]:
        """The pooled modules ``cell`` uses, keyed as in its exported :class:`CellBlock`."""
        e, a = cell.expand, cell.act
        mods = {'project': self.project[_e(e)]}
        if _e(e) in self.expand:
            mods['expand'] = self._module(self.expand, _e(e), a)
        if cell.se:
            mods['se'] = self.se[_se_key(e, a, cell.se_style)]
        for s, d, op in cell.edges:
            if PRIMITIVES[op].parametric:
                mods[f'edges.{edge_name(s, d)}'] = self._module(self.edges, _edge_key(s, d, op, e), a)
        return mods

    def block_state_dict(self, cell: Cell) -> Dict[str, torch.Tensor]:
        """A state dict for ``cell.build(...)`` that holds the supernet's weights for ``cell``."""
        return {f'{name}.{k}': v for name, m in self.block_modules(cell).items() for k, v in m.state_dict().items()}

    def used_parameters(self, cell: Cell) -> List[nn.Parameter]:
        return [p for m in self.block_modules(cell).values() for p in m.parameters()]

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        e, a = cell.expand, cell.act
        stride = self.spec.stride

        def edge(s, d, op, h):
            if PRIMITIVES[op].parametric:
                return self._run(self.edges, _edge_key(s, d, op, e), a, h)
            return self.free[f'{op}_s{stride if s == 0 else 1}_{a}'](h)

        ek = _e(e)
        return run_cell(x, cell.n_nodes, cell.edges,
                        expand=(lambda h: self._run(self.expand, ek, a, h)) if ek in self.expand else (lambda h: h),
                        edge=edge, se=self.se[_se_key(e, a, cell.se_style)] if cell.se else (lambda h: h),
                        project=self.project[ek], shortcut=self.use_shortcut)


def pool_size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class AutoSpaceMixedLayer(BaseSuperNetModule):
    """y = Σ_k softmax(α)_k · cell_k(x) over the sampled cells (+ the reference branch, last).

    The branch list changes at iteration boundaries (:meth:`set_branches`); α has a fixed length
    ``max_branches`` so the optimizer never sees a new parameter, and only the first ``n`` entries are used.
    """

    def __init__(self, spec: BlockSpec, supercell: SuperCell, max_branches: int, label: str, group: str,
                 fixed: Optional[FixedModules] = None):
        super().__init__()
        self.spec = spec
        self.label = label
        self.group = group
        self.supercell = supercell
        # an adopted space's fixed candidates: the user's own modules, shared with the adopted choice
        self.fixed = fixed if fixed is not None else FixedModules()
        self._arch_alpha = nn.Parameter(torch.zeros(max_branches))
        self.branches: List[Cell] = []
        self.has_reference = False
        self.uniform = False   # warm-up: uniformly weighted paths, α untouched
        self.path_mode = 'sum'   # 'sum': Eqn 3; 'sample': ProxylessNAS binary gates (one active path)
        self.weight_path_mode = 'sum'   # the same choice for the weight step
        self.arch_step = False   # set by the Lightning module around the α step
        self.active: Optional[int] = None   # run only this branch (the paired evaluation sets it)
        self.generator: Optional[torch.Generator] = None

    # ----- branches -----
    def set_branches(self, cells: Sequence[Cell], reference: Optional[Cell]) -> None:
        cells = list(cells) + ([reference] if reference is not None else [])
        if not 1 <= len(cells) <= self._arch_alpha.numel():
            raise ValueError(f'{self.label}: {len(cells)} branches, room for {self.numel_alpha}')
        for c in cells:
            why = self._supports(c)
            if why:
                raise ValueError(f'{self.label}: cell {c} cannot run on the weight pool: {why}')
        self.branches = cells
        self.has_reference = reference is not None
        with torch.no_grad():
            self._arch_alpha.zero_()

    def _supports(self, cand) -> Optional[str]:
        if isinstance(cand, FixedCandidate):
            return None if cand.name in self.fixed else f'no fixed candidate {cand.name!r} in this layer'
        return self.supercell.supports(cand)

    def run_branch(self, x, cand):
        if isinstance(cand, FixedCandidate):
            return self.fixed[cand.name](x)
        return self.supercell(x, cand)

    def used_parameters(self, cand) -> List[nn.Parameter]:
        if isinstance(cand, FixedCandidate):
            return list(self.fixed[cand.name].parameters())
        return self.supercell.used_parameters(cand)

    @property
    def numel_alpha(self) -> int:
        return self._arch_alpha.numel()

    def probs(self) -> torch.Tensor:
        n = len(self.branches)
        if self.uniform:
            return torch.full((n,), 1.0 / n, device=self._arch_alpha.device)
        return torch.softmax(self._arch_alpha[:n], -1)

    def forward(self, x):
        if not self.branches:
            raise RuntimeError(f'{self.label}: no branches set; the strategy sets them before training')
        if self.active is not None:
            return self.run_branch(x, self.branches[self.active])
        w = self.probs()
        mode = self.path_mode if self.arch_step else self.weight_path_mode
        if mode == 'sample':
            return self._forward_binary_gate(x, w)
        out = None
        for k, cell in enumerate(self.branches):
            y = self.run_branch(x, cell) * w[k]
            out = y if out is None else out + y
        return out

    def _forward_binary_gate(self, x, w):
        # One path, drawn from softmax(α), carries the value and the weight gradients. α gets the
        # ProxylessNAS binary-gate gradient dL/dp_k = <dL/dy, y_k>, with every y_k evaluated at the
        # single-path network (the other branches run without building a weight graph).
        i = int(torch.multinomial(w.detach(), 1, generator=self.generator))
        out = self.run_branch(x, self.branches[i])
        if not (self.arch_step and torch.is_grad_enabled() and self._arch_alpha.requires_grad and not self.uniform):
            return out
        ys = []
        with torch.no_grad():
            for k, cell in enumerate(self.branches):
                ys.append(out.detach() if k == i else self.run_branch(x, cell))
        gate = sum((w[k] - w[k].detach()) * ys[k] for k in range(len(ys)))
        return out + gate

    def scores(self) -> Dict[str, float]:
        """The α estimators' r for each sampled cell (:func:`~autospace_nni.fitness.alpha_scores`)."""
        from ..fitness import alpha_scores
        p = torch.softmax(self._arch_alpha[:len(self.branches)].detach(), -1).tolist()
        return alpha_scores(p, [c.key for c in self.branches], self.has_reference)

    # ----- NNI supernet contract -----
    def arch_parameters(self):
        return [self._arch_alpha]

    def resample(self, memo):
        return {}

    def export(self, memo):
        if self.label in memo or not self.branches:
            return {}
        return {self.label: str(self.branches[int(self.probs().argmax())])}

    def export_probs(self, memo):
        if self.label in memo or not self.branches:
            return {}
        p = self.probs()
        return {self.label: {str(c): p[i] for i, c in enumerate(self.branches)}}

    def freeze(self, sample):
        cand = parse_candidate(sample[self.label])
        if isinstance(cand, FixedCandidate):
            return copy.deepcopy(self.fixed[cand.name])
        return cand.build(self.spec.c_in, self.spec.c_out, self.spec.stride)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        from .exploration import CellChoice
        if isinstance(module, CellChoice) and 'autospace' in mutate_kwargs:
            opts = mutate_kwargs['autospace']
            pool = SuperCell(module.spec, max_nodes=opts['max_nodes'], ops=opts['ops'],
                             expand_choices=opts['expand_choices'], acts=opts['acts'], se=opts['se'],
                             se_styles=opts.get('se_styles', ('exp',)))
            return cls(module.spec, pool, opts['max_branches'], module.label, module.spec.group,
                       fixed=getattr(module, 'fixed', None))
        return None

    def extra_repr(self) -> str:
        return f'label={self.label}, group={self.group}, branches={len(self.branches)}'
