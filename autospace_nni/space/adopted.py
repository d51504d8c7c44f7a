"""Adopting a user's own NNI model space: evolve the candidates of its ``LayerChoice``s.

:func:`adopt` runs one dry forward pass with hooks on every
``LayerChoice``. A choice whose candidates map one 4-D tensor to one 4-D tensor, with a same-padded
stride of 1 or 2, becomes an :class:`AdoptedChoice`: a block with a population of its own (its own layer
group, named by its label). Each candidate is then either

* *expressible*: a structural guess (expand 1x1 → depthwise kxk → project 1x1, or depthwise → project)
  that is confirmed only when the cell's block, loaded with the candidate's weights, computes the same
  outputs and the analytic cost equals a hook count of the candidate. It seeds the population as a
  reference cell; or
* *fixed*: kept as the user's module (``fixed:<name>``), a member that competes on fitness but never
  mutates, priced by a hook count.

Everything else stays as it is and is listed with the reason (:attr:`AdoptedSpace.left_alone`): other
mutables (``InputChoice``, value choices in layers, ``Repeat`` depths) are pinned during the evolution,
``Repeat`` at its largest depth so every evolved choice inside it trains, the others at their default.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from nni.mutable import Categorical, Mutable, frozen_context
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableModule, Repeat
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from ..cells.block import CellBlock
from ..cells.cost import count_by_hooks
from ..cells.fixed import Candidate, FixedCandidate, FixedModules, parse_candidate
from ..cells.genome import Cell
from ..cells.ops import out_size
from .exploration import CellChoice, ExplorationSpace
from .adopted_export import class_path, parent_and_name
from .layout import AdoptedLayout, LeftAlone, plain
from .network import NetworkCost
from .skeleton import BlockSpec

__all__ = ['adopt', 'AdoptedSpace', 'AdoptedChoice', 'AdoptedLayout', 'LeftAlone', 'recognise_candidate',
           'PinnedModule', 'pin_left_alone']

_ACT_TYPES = {nn.ReLU6: 'relu6', nn.Hardswish: 'hswish'}
_OTHER_ACTS = (nn.ReLU, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Mish, nn.PReLU)   # (Sigmoid: SE gates)


# ----- recognising candidates -----
def _dw_op(conv: nn.Conv2d) -> Optional[str]:
    k, d = conv.kernel_size, conv.dilation
    if k[0] != k[1] or d[0] != d[1]:
        return None
    if d[0] == 1 and k[0] in (3, 5, 7):
        return f'dw{k[0]}x{k[0]}'
    if d[0] == 2 and k[0] == 3:
        return 'dil_dw3x3'
    return None


def _guess_cell(module: nn.Module, spec: BlockSpec) -> Optional[Cell]:
    if isinstance(module, CellBlock):
        return Cell.parse(module.cell_text)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    acts = {_ACT_TYPES[type(m)] for m in module.modules() if type(m) in _ACT_TYPES}
    if any(isinstance(m, _OTHER_ACTS) for m in module.modules()) or len(acts) != 1:
        return None
    act = acts.pop()
    se = False
    if len(convs) in (4, 5):   # an SE pair (reduce, expand) sits between the depthwise and the projection
        se, convs = True, convs[:-3] + convs[-1:]
    if len(convs) == 3:
        expand_conv, dw, project = convs
        if expand_conv.kernel_size != (1, 1) or expand_conv.in_channels != spec.c_in:
            return None
        c_e = expand_conv.out_channels
    elif len(convs) == 2:
        dw, project = convs
        c_e = spec.c_in
    else:
        return None
    if c_e % spec.c_in or dw.groups != c_e or dw.in_channels != c_e or project.kernel_size != (1, 1):
        return None
    op = _dw_op(dw)
    if op is None or dw.stride != (spec.stride, spec.stride):
        return None
    return Cell(((0, 1, op),), c_e // spec.c_in, act, se)


def recognise_candidate(module: nn.Module, spec: BlockSpec) -> Optional[Cell]:
    """The cell that computes exactly what ``module`` computes on ``spec``'s shapes, or ``None``.

    The guess is only accepted when (1) the cell's analytic MAdds and params equal a hook count of
    ``module`` and (2) the cell's block, loaded with ``module``'s weights and BN settings, gives the same
    outputs on an input large enough to saturate ReLU6."""
    cell = _guess_cell(module, spec)
    if cell is None:
        return None
    shape = (spec.c_in, spec.height, spec.width)
    try:
        cost = cell.cost(spec.c_in, spec.c_out, spec.stride, spec.height, spec.width)
        if (cost.madds, cost.params) != count_by_hooks(module, shape):
            return None
        block = cell.build(spec.c_in, spec.c_out, spec.stride)
        src, dst = list(module.state_dict().values()), block.state_dict()
        if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst.values())):
            return None
        block.load_state_dict(OrderedDict(zip(dst.keys(), src)))
        for ours, theirs in zip([m for m in block.modules() if isinstance(m, nn.BatchNorm2d)],
                                [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]):
            ours.eps = theirs.eps
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, *shape, generator=gen) * 8
        was_training = module.training
        module.eval()
        block.eval()
        try:
            with torch.no_grad():
                same = torch.allclose(block(x), module(x), rtol=1e-4, atol=1e-4)
        finally:
            module.train(was_training)
        return cell if same else None
    except Exception:   # a module that does not run on these shapes is simply not expressible
        return None


# ----- the adopted block -----
class AdoptedChoice(CellChoice):
    """A user's ``LayerChoice`` turned into an evolving cell choice. Standing alone (a dry run) it runs
    its reference; the AutoSpace mutation hook swaps it for a mixed layer like any :class:`CellChoice`."""

    def __init__(self, spec: BlockSpec, reference: Candidate, fixed_modules: Dict[str, nn.Module]):
        MutableModule.__init__(self)
        self.spec = spec
        self.label = spec.label
        self.reference = reference
        self.fixed = FixedModules(fixed_modules)
        self.choice = self.add_mutable(Categorical([str(reference)], label=spec.label))
        self.reference_block = self._build(reference)

    def _build(self, cand: Candidate) -> nn.Module:
        if isinstance(cand, FixedCandidate):
            return self.fixed[cand.name]
        return cand.build(self.spec.c_in, self.spec.c_out, self.spec.stride)

    def check_contains(self, sample):
        from nni.mutable import SampleValidationError
        if self.label not in sample:
            return SampleValidationError(f'{self.label} is missing from the sample')
        try:
            cand = parse_candidate(sample[self.label])
        except ValueError as e:
            return SampleValidationError(f'{self.label}: {e}')
        if isinstance(cand, FixedCandidate) and cand.name not in self.fixed:
            return SampleValidationError(f'{self.label}: no fixed candidate {cand.name!r}')
        return None

    def freeze(self, sample):
        cand = parse_candidate(sample[self.label])
        return copy.deepcopy(self._build(cand)) if isinstance(cand, FixedCandidate) else self._build(cand)

    def forward(self, x):
        return self.reference_block(x)


# ----- pinning what is left alone -----
class PinnedModule(BaseSuperNetModule):
    """A left-alone mutable, fixed for the evolution (``Repeat`` at its largest depth, others at their
    default). It has no architecture parameters and exports nothing: it is not searched here."""

    def __init__(self, module: nn.Module, label: str):
        super().__init__()
        self.module = module
        self.label = label

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def resample(self, memo):
        return {}

    def export(self, memo):
        return {}

    def export_probs(self, memo):
        return {}


def _deepest(repeat: Repeat) -> nn.Module:
    return nn.Sequential(*repeat.blocks)


def pin_left_alone(module, name, memo, mutate_kwargs):
    """AutoSpace mutation hook: pin the mutables an adopted space leaves alone (no-op otherwise)."""
    pin = mutate_kwargs.get('autospace', {}).get('pin')
    if pin is None or isinstance(module, (CellChoice, BaseSuperNetModule)):
        return None
    if isinstance(module, Repeat):
        return PinnedModule(_deepest(module), module.label or name)
    if isinstance(module, MutableModule) and module.mutables and not isinstance(module, ModelSpace):
        return PinnedModule(module.freeze({**_defaults(module), **pin}), getattr(module, 'label', name))
    return None


def _defaults(module: MutableModule) -> dict:
    return {label: m.default() for label, m in module.simplify().items()}


# ----- the exploration space of an adopted model space -----
class AdoptedSpace(ExplorationSpace):
    """``adopt(space)``: a copy of the user's space whose adoptable ``LayerChoice``s are
    :class:`AdoptedChoice`s. ``layout`` (an :class:`~autospace_nni.space.layout.AdoptedLayout`) plays the
    skeleton's part for the strategy;
    ``pin`` is the value of every other choice during the evolution (``Repeat`` depths at their largest)."""

    def __init__(self, net: nn.Module, layout: AdoptedLayout, references: Dict[str, Candidate],
                 pin: dict, base: Optional[ModelSpace] = None):
        ModelSpace.__init__(self)
        self.net = net
        self.layout = layout
        self.references = references
        self.pin = pin
        self._base = [base]   # the user's untouched space, hidden from nn.Module's child registry

    @property
    def base(self) -> Optional[ModelSpace]:
        return self._base[0]

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    def cell_choices(self):
        return [m for m in self.modules() if isinstance(m, AdoptedChoice)]


def adopt(space: ModelSpace, input_shape=None) -> AdoptedSpace:
    """Convert ``space`` (any NNI PyTorch ``ModelSpace``; it is not modified) for AutoSpace.

    ``input_shape`` is one example's shape, e.g. ``(3, 32, 32)``; without it, ``space.input_shape`` or
    ``space.dummy_input`` is used if present."""
    if isinstance(space, ExplorationSpace):
        raise TypeError('this is already an ExplorationSpace')
    if not isinstance(space, ModelSpace):
        raise TypeError(f'AutoSpace adopts an NNI ModelSpace, got {type(space).__name__}')
    if input_shape is None:
        input_shape = getattr(space, 'input_shape', None)
        dummy = getattr(space, 'dummy_input', None)
        if input_shape is None and torch.is_tensor(dummy):
            input_shape = tuple(dummy.shape[1:])
    if input_shape is None:
        raise ValueError(f'cannot tell the input shape of {type(space).__name__}: pass input_shape=(C, H, W) '
                         '(AutoSpace takes it from the first training batch when run by a strategy)')
    input_shape = tuple(int(v) for v in input_shape)
    net = copy.deepcopy(space)
    left: List[LeftAlone] = []

    # 1. one dry forward pass, Repeats at their largest depth, recording each LayerChoice's calls
    repeats = [(m, m._dry_run_depth) for m in net.modules() if isinstance(m, Repeat)]
    choices = {path: m for path, m in net.named_modules() if isinstance(m, LayerChoice)}
    calls: Dict[str, list] = {path: [] for path in choices}
    handles = []
    for path, lc in choices.items():
        handles.append(lc.register_forward_hook(
            lambda m, args, kwargs, out, path=path: calls[path].append((args, kwargs, out)), with_kwargs=True))
    ran: Dict[int, Tuple[int, int]] = {}   # module id -> (madds, own params), for each module that ran

    def count(m, inp, out):
        if id(m) in ran:
            return
        madds = 0
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            madds = out[0].numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            madds = out[0].numel() * m.in_features
        ran[id(m)] = (madds, sum(p.numel() for p in m.parameters(recurse=False)))
    for m in net.modules():
        if any(True for _ in m.parameters(recurse=False)) or isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(count))
    was_training = net.training
    net.eval()
    try:
        for r, _ in repeats:
            r._dry_run_depth = len(r.blocks)
        for lc in choices.values():
            # NNI's LayerChoice.forward takes one tensor; a supernet passes whatever its candidates take
            lc.forward = _dry_forward(lc)
        device = next((p.device for p in net.parameters()), torch.device('cpu'))
        with torch.no_grad():
            net(torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device))
    finally:
        for lc in choices.values():
            lc.__dict__.pop('forward', None)
        for r, depth in repeats:
            r._dry_run_depth = depth
        for h in handles:
            h.remove()
        net.train(was_training)

    # 2. which choices can evolve
    label_count: Dict[str, int] = {}
    for lc in choices.values():
        label_count[lc.label] = label_count.get(lc.label, 0) + 1
    specs, paths, user, refs, adopted, raw_names = [], {}, {}, {}, {}, {}
    for path, lc in choices.items():
        reason, spec = _check_choice(path, lc, calls[path], label_count, choices)
        if reason is not None:
            left.append(LeftAlone(str(lc.label), 'LayerChoice', path, reason))
            continue
        recognised = {n: recognise_candidate(lc[n], spec) for n in lc.names}
        if spec.height == spec.width == 1:
            # on a 1x1 map strides 1 and 2 give the same shape: take the one the candidates were built with
            spec2 = dataclasses.replace(spec, stride=2)
            recognised2 = {n: recognise_candidate(lc[n], spec2) for n in lc.names}
            if sum(c is not None for c in recognised2.values()) > sum(c is not None for c in recognised.values()):
                spec, recognised = spec2, recognised2
        cands: Dict[str, Candidate] = OrderedDict()
        fixed_modules: Dict[str, nn.Module] = OrderedDict()
        fixed_costs = []
        for name in lc.names:
            module = lc[name]
            cell = recognised[name]
            if cell is not None and cell.key not in {c.key for c in cands.values()}:
                cands[str(name)] = cell
            else:
                cands[str(name)] = FixedCandidate(str(name))
                fixed_modules[str(name)] = module
                fixed_costs.append((str(name), *count_by_hooks(module, (spec.c_in, spec.height, spec.width))))
        spec = dataclasses.replace(spec, fixed=tuple(fixed_costs))
        cells = [c for c in cands.values() if isinstance(c, Cell)]
        refs[spec.group] = cells[0] if cells else next(iter(cands.values()))
        specs.append(spec)
        paths[spec.label] = path
        user[spec.group] = {n: str(c) for n, c in cands.items()}
        raw_names[spec.label] = list(lc.names)
        adopted[path] = (spec, fixed_modules)
    if not specs:
        raise ValueError(f'{type(space).__name__} has no LayerChoice that AutoSpace can evolve:\n'
                         + '\n'.join(f'  {x.label} ({x.path}): {x.reason}' for x in left))

    # 3. the other mutables stay, pinned for the evolution
    adopted_paths = set(adopted)
    for path, m in net.named_modules():
        if isinstance(m, Repeat):
            if not isinstance(m.depth_choice, Mutable):
                continue   # a fixed depth is no choice
            left.append(LeftAlone(str(m.label or path), 'Repeat', path,
                                  f'depth stays a choice; the evolution runs all {len(m.blocks)} blocks'))
        elif isinstance(m, MutableModule) and m.mutables and not isinstance(m, (LayerChoice, ModelSpace)) \
                and not any(path.startswith(p + '.') for p in adopted_paths):
            labels = ', '.join(sorted(m.simplify()))
            left.append(LeftAlone(labels, type(m).__name__, path, 'not a LayerChoice; pinned at its default'))

    # 4. swap in the adopted choices
    with frozen_context():
        for path, (spec, fixed_modules) in adopted.items():
            parent, name = parent_and_name(net, path)
            setattr(parent, name, AdoptedChoice(spec, refs[spec.group], fixed_modules))
    pin = {str(label): m.default() for label, m in net.simplify().items() if label not in paths}
    for r, _ in repeats:   # the evolution runs every block of a Repeat, so its export says so
        depth = r.depth_choice
        if getattr(depth, 'label', None) in pin and hasattr(depth, 'values'):
            pin[depth.label] = max(depth.values)
    # the rest of the network, as the evolution runs it: what ran, less the evolved choices
    inside = {id(m) for path in adopted for m in choices[path].modules()}
    outside = NetworkCost(sum(v[0] for k, v in ran.items() if k not in inside),
                          sum(v[1] for k, v in ran.items() if k not in inside))
    layout = AdoptedLayout(type(space).__name__, class_path(space), input_shape, specs, outside, paths, user,
                           left, act='relu6', raw_names=raw_names, pinned=plain(pin))
    return AdoptedSpace(net, layout, refs, pin, base=space)


def _dry_forward(lc: LayerChoice):
    def forward(*args, **kwargs):
        for name, child in lc.named_children():
            if str(name) == str(lc._dry_run_choice):
                return child(*args, **kwargs)
        raise RuntimeError(f'{lc.label}: no dry-run candidate')
    return forward


def _check_choice(path, lc, calls, label_count, choices) -> Tuple[Optional[str], Optional[BlockSpec]]:
    if label_count[lc.label] > 1:
        return f'label shared by {label_count[lc.label]} LayerChoices', None
    if any(path.startswith(p + '.') for p in choices if p != path):
        return 'nested inside another LayerChoice', None
    if not calls:
        return 'not reached by a forward pass', None
    if len(calls) > 1:
        return f'called {len(calls)} times in one forward pass', None
    args, kwargs, out = calls[0]
    if kwargs or len(args) != 1:
        return f'takes {len(args) + len(kwargs)} inputs (cells map one tensor to one)', None
    x = args[0]
    if not torch.is_tensor(x) or x.dim() != 4 or not torch.is_tensor(out) or out.dim() != 4:
        return 'input or output is not one 4-D (N, C, H, W) tensor', None
    _, c_in, h, w = x.shape
    _, c_out, ho, wo = out.shape
    stride = next((s for s in (1, 2) if (out_size(h, s), out_size(w, s)) == (ho, wo)), None)
    if stride is None:
        return f'maps {h}x{w} to {ho}x{wo}: not a same-padded stride-1 or stride-2 block', None
    for name in lc.names:
        if any(isinstance(m, MutableModule) and m.mutables for m in lc[name].modules()):
            return f'candidate {name!r} holds choices of its own', None
    label = str(lc.label)   # NNI's labels are a str subclass; keep checkpoints to plain types
    return None, BlockSpec(label, 0, 0, int(c_in), int(c_out), stride, int(h), int(w), label, False)
