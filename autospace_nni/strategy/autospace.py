"""AutoSpace as an NNI one-shot strategy.

What happens, in Lightning terms:

* ``mutate_model``: a mutation hook swaps every :class:`CellChoice` of the exploration space for an
  :class:`AutoSpaceMixedLayer` (K sampled cells + the reference branch, weighted by softmax(α), Eqn 3),
  each with a static weight pool.
* One **iteration** is one Lightning training epoch (or ``steps_per_iteration`` optimizer steps): one
  pass over the training split, the held-out loader cycling beside it. With an α estimator
  (:mod:`autospace_nni.fitness`) each step first updates α on a held-out batch (Adam, with the budget penalty), then the
  weights on a train batch (the evaluator's optimizer), as in DARTS' first-order update (Eqn 4). With
  ``paired-eval`` only the weights train, one uniformly drawn path per step. During the first
  ``warmup_iterations`` paths are weighted uniformly and nothing is scored.
* At the **iteration boundary** (``on_train_epoch_end``): the estimator scores each sampled cell, Eqn 5
  updates their fitness, then each group draws its next K cells by tournament with local mutation
  (children join the population, the oldest member leaves; the reference is a parent too), α is reset
  to zero and its Adam state cleared. The main phase ends after ``iterations - final_iterations``
  iterations or once every group's top-M set is unchanged for ``patience`` iterations; the final
  iterations then score each group's finalists again, without mutation.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import json
import logging
import textwrap
import time
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from nni.nas.oneshot.pytorch.strategy import OneShotStrategy, no_default_hook
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import RawFormatModelSpace
from pytorch_lightning.trainer.states import TrainerStatus

from ..budget import AnalyticCostProfiler, BudgetPenalty
from ..config import AutoSpaceConfig, options_doc
from ..errors import Interrupted, NonFiniteError, NumericalFaultError
from ..cells.genome import Cell
from ..space.adopted import adopt, pin_left_alone
from ..space.exploration import ExplorationSpace
from ..space.learned import LearnedCell, LearnedSpace
from ..space.layout import Layout
from ..space.supernet import AutoSpaceMixedLayer
from .evolution import CellSampler
from .admission import admissible_fn, cheapest_costs, resolve_references, seed_cells_for
from .checkpoint import CHECKPOINT, PREVIOUS, find_checkpoint, save_atomic
from .loop import EvolutionLoop
from ..fitness import estimator as fitness_estimator
from .module import AutoSpaceLightningModule

__all__ = ['AutoSpace', 'AutoSpaceLightningModule']

_logger = logging.getLogger(__name__)


class AutoSpace(OneShotStrategy):
    """Learn a search space by evolving cell populations with a differentiable fitness (AutoSpace).

    Use on an :class:`~autospace_nni.space.exploration.ExplorationSpace` with an NNI ``Lightning``
    evaluator that has train and validation loaders (the validation loader is the held-out split for α)::

        strategy = AutoSpace(population_size=16, sample_k=3, seed=0)
        NasExperiment(ExplorationSpace(Skeleton.preset('tiny-8')), evaluator, strategy).run()
        strategy.learned_space().save('learned_space.json')

    Any other NNI ``ModelSpace`` works too (:meth:`adopt`): each ``LayerChoice`` that maps one tensor to
    one tensor evolves, seeded with its own candidates, and ``learned_space().model_space()`` gives that
    space back with the learned candidates (README, "Drop-in").

    Every option of the method is a keyword argument, defined once (with its default and valid range) in
    :class:`~autospace_nni.config.AutoSpaceConfig`, whose fields are listed below; an ``AutoSpaceConfig`` may
    be passed as the first argument instead, and keyword arguments then override it. Besides those:
    ``checkpoint_dir``, where an atomic checkpoint is written at every iteration boundary (``None``: no
    checkpoints, and a numerical fault ends the run), and NNI's ``mutation_hooks``.

    """

    def __init__(self, config: Optional[AutoSpaceConfig] = None, /, *, checkpoint_dir: Optional[str] = None,
                 mutation_hooks=None, **options):
        names = set(AutoSpaceConfig.names())
        unknown = sorted(k for k in options if k not in names)
        if unknown:
            close = {k: difflib.get_close_matches(k, names, 1) for k in unknown}
            raise TypeError('AutoSpace got unknown options ' + ', '.join(
                f'{k!r}' + (f' (did you mean {close[k][0]!r}?)' if close[k] else '') for k in unknown))
        super().__init__(mutation_hooks=mutation_hooks)
        # every value is checked here, in one place (ValueError naming the option and its range)
        cfg = dataclasses.replace(config, **options) if config is not None else AutoSpaceConfig(**options)
        self.config = cfg
        self.estimator = fitness_estimator(cfg.fitness)
        Cell.random(np.random.RandomState(0), n_nodes=cfg.n_nodes, ops=cfg.ops, expand_choices=cfg.expand_choices,
                    act_choices=cfg.act_choices, se_choices=cfg.se_choices)  # the primitives exist
        for name in names - _DERIVED:
            setattr(self, name, getattr(cfg, name))
        # the config holds sequences as tuples already
        self.sampler = CellSampler(cfg.n_nodes, cfg.ops, cfg.expand_choices, cfg.act_choices, cfg.se_choices,
                                   cfg.edge_prob)
        self.reference_option = cfg.reference
        self.final_iterations = cfg.resolved_final_iterations()
        self.space: Optional[ExplorationSpace] = None   # the space being evolved (prepare)
        self.checkpoint_dir = checkpoint_dir
        self.rollbacks: List[dict] = []      # one record per numerical fault survived
        self.lr_scale = 1.0                  # product of the rollback factors applied so far
        self._pending_lr_scale: Optional[float] = None
        self.on_rollback = []                # callbacks(strategy, fault_record)
        self._torch_gen = torch.Generator().manual_seed(0 if cfg.seed is None else cfg.seed)

        # the evolution itself: populations, sampling, Eqn 5, convergence (no torch in it)
        self.loop = EvolutionLoop(population_size=cfg.population_size, sample_k=cfg.sample_k,
                                  tournament_size=cfg.tournament_size, p_mutation=cfg.p_mutation,
                                  replacement=cfg.replacement, beta=cfg.beta, initial_fitness=cfg.initial_fitness,
                                  sampler=self.sampler, top_m=cfg.top_m, min_evals=cfg.min_evals,
                                  final_iterations=self.final_iterations, patience=cfg.patience,
                                  iterations=cfg.iterations, warmup_iterations=cfg.warmup_iterations, seed=cfg.seed)
        self.references: Optional[Dict[str, Cell]] = None
        self.layout: Optional[Layout] = None   # the space's layout: a Skeleton or an adopted model space's
        self.profiler: Optional[AnalyticCostProfiler] = None
        self.penalty: Optional[BudgetPenalty] = None
        self._layers: Dict[str, List[AutoSpaceMixedLayer]] = {}
        self._started = None
        self._wall_time = 0.0
        self.dataset_name: Optional[str] = None
        self.on_iteration_end = []   # callbacks(strategy, record)

    # the loop's state, under the names the strategy has always had
    populations = property(lambda self: self.loop.populations)
    history = property(lambda self: self.loop.history)
    iteration = property(lambda self: self.loop.iteration)
    finished = property(lambda self: self.loop.finished)
    rng = property(lambda self: self.loop.rng)
    in_warmup = property(lambda self: self.loop.in_warmup)

    @property
    def sampled(self) -> Dict[str, List[str]]:
        return self.loop.sampled

    @property
    def iterations(self) -> Optional[int]:
        return self.loop.iterations

    @iterations.setter
    def iterations(self, value: Optional[int]) -> None:
        self.loop.iterations = value

    # ----- setup -----
    def extra_repr(self) -> str:
        return (f'population_size={self.population_size}, sample_k={self.sample_k}, top_m={self.top_m}, '
                f'reference={self.reference_option!r}, budget_madds={self.budget_madds}, seed={self.seed}')

    def _admissible_fn(self, group: str):
        """The hard filter of ``group`` (:func:`~autospace_nni.strategy.admission.admissible_fn`)."""
        if self.budget_madds is None or not self.hard_filter:
            return lambda cell: True
        floor = cheapest_costs(self.layout, self.sampler, self.layout.candidates_of)
        return admissible_fn(self.layout, group, fixed_madds=self.profiler.fixed, floor=floor,
                             limit=self.budget_madds * self.filter_slack)

    def default_mutation_hooks(self):
        return [AutoSpaceMixedLayer.mutate, pin_left_alone, no_default_hook]

    def run_hook(self, hook, name, module, memo):
        cells = [m.cell for p in self.populations.values() for m in p.members]
        refs = list((self.references or {}).values())
        everything = [c for c in cells + refs if isinstance(c, Cell)]
        opts = {
            'max_nodes': max([self.sampler.n_nodes] + [c.n_nodes for c in everything]),
            'ops': sorted(set(self.sampler.ops) | {op for c in everything for _, _, op in c.edges}),
            'expand_choices': sorted(set(self.sampler.expand_choices) | {c.expand for c in everything}),
            'acts': sorted(set(self.sampler.act_choices) | {c.act for c in everything}),
            'se': bool(any(self.sampler.se_choices) or any(c.se for c in everything)),
            'max_branches': self.sample_k + (1 if self.references is not None else 0),
            'pin': self.space.pin,
        }
        return hook(module, name, memo, {'autospace': opts})

    def adopt(self, space, evaluator=None) -> ExplorationSpace:
        """``space`` itself if it is an :class:`ExplorationSpace`, else the user's NNI ``ModelSpace``
        adopted (:func:`~autospace_nni.space.adopted.adopt`): its adoptable ``LayerChoice``s evolve."""
        if isinstance(space, ExplorationSpace):
            return space
        if not isinstance(space, ModelSpace):
            raise TypeError(f'AutoSpace searches an NNI ModelSpace, got {type(space).__name__}')
        shape = self.input_shape or _input_shape(evaluator)
        adopted = adopt(space, shape)
        # under NNI's logger, so it shows in the console and the experiment log like NNI's own messages
        logging.getLogger('nni.autospace').info('AutoSpace on %s: which choices evolve and which stay\n%s',
                                                type(space).__name__, adopted.layout.format_table())
        return adopted

    def prepare(self, space: ExplorationSpace) -> None:
        """Build the populations for ``space`` (called by ``_initialize``; public for custom loops)."""
        if not isinstance(space, ExplorationSpace):
            raise TypeError(f'AutoSpace.prepare needs an ExplorationSpace (see AutoSpace.adopt), got {type(space).__name__}')
        self.space = space
        self.layout = space.layout
        self.references = resolve_references(self.reference_option, space)
        self.profiler = AnalyticCostProfiler(self.layout)
        if self.budget_madds is not None and self.budget_penalty is not None:
            self.penalty = BudgetPenalty(self.profiler, self.budget_madds, mode=self.budget_penalty,
                                         beta=self.budget_beta, scale=self.budget_scale)
        self.loop.references = {} if self.references is None else dict(self.references)
        if not self.populations:
            for g in self.layout.groups():
                planted = seed_cells_for(self.seed_cells, self.layout, g)
                refs = [self.references[g]] if self.references else []
                # the candidates of a user's LayerChoice (an adopted space; a skeleton has none): the
                # expressible ones as reference cells, the others as fixed members; all compete, only the
                # first is the reference branch
                user = self.layout.candidates_of(g)
                if user:
                    if self.references:
                        refs += [c for c in user if c.key != self.references[g].key]
                    else:
                        planted = user + planted
                    if len(refs) + len(planted) >= self.population_size:
                        # the user's candidates never age out: with no room left, no child could ever join
                        raise ValueError(f'{g}: population_size ({self.population_size}) must exceed the '
                                         f'{len(refs) + len(planted)} candidates of the user\'s LayerChoice')
                pop = self.loop.add_group(g, references=refs, planted=planted, admissible=self._admissible_fn(g))
                if len(pop.members) < min(self.sample_k, self.population_size):
                    raise ValueError(f'group {g}: only {len(pop.members)} cells fit the budget '
                                     f'({self.budget_madds:.3g} MAdds); raise --budget-madds or filter_slack')

    def _initialize(self, model_space: RawFormatModelSpace, engine):
        raw = model_space.model_space if isinstance(model_space, RawFormatModelSpace) else model_space
        space = self.adopt(raw, getattr(model_space, 'evaluator', None))
        if space is not raw:   # a user's space: the supernet is built from the adopted copy, theirs stays as is
            model_space = RawFormatModelSpace(space, model_space.evaluator)
        self.prepare(space)
        result = super()._initialize(model_space, engine)
        self.attach(self.supernet)
        return result

    def attach(self, supernet: nn.Module) -> None:
        """Find the mixed layers of ``supernet`` and give them their first branches."""
        self._layers = {}
        for m in supernet.modules():
            if isinstance(m, AutoSpaceMixedLayer):
                self._layers.setdefault(m.group, []).append(m)
        if set(self._layers) != set(self.populations):
            raise RuntimeError(f'supernet groups {sorted(self._layers)} differ from populations {sorted(self.populations)}')
        if self.sampled:
            self._apply_branches()
        else:
            self._sample_next()

    def configure_oneshot_module(self, training_module):
        return AutoSpaceLightningModule(training_module, strategy=self)

    def train_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        from pytorch_lightning.utilities.combined_loader import CombinedLoader
        # an epoch is one pass over the training split: a shorter held-out loader cycles ('max_size_cycle'),
        # a longer one is cut ('min_size')
        train, val = train_dataloader_fn(), val_dataloader_fn()
        mode = 'min_size' if len(val) >= len(train) else 'max_size_cycle'
        return CombinedLoader({'train': train, 'val': val}, mode=mode)

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return None

    def _set_iterations(self, trainer) -> None:
        # T defaults to the trainer's max_epochs; the trainer must allow T epochs
        if self.iterations is None:
            self.iterations = int(trainer.fit_loop.max_epochs or 1)
        trainer.fit_loop.max_epochs = max(trainer.fit_loop.max_epochs or 0, self.iterations)

    def _run(self):
        self._started = time.time()
        ev = self._mutated_model_space.evaluator
        self._set_iterations(ev.trainer)
        try:
            super()._run()
        finally:
            self._wall_time += time.time() - self._started
            self._started = None

    def evolve(self, space: ExplorationSpace, evaluator, *, resume_from: Optional[str] = None) -> LearnedSpace:
        """Run the evolution in this process without a ``NasExperiment`` (no NNI manager, nothing
        written to ``~/nni-experiments``): what the CLI and NNI trials use. Returns the learned space.
        ``resume_from`` is a checkpoint written with ``checkpoint_dir`` (see :meth:`find_checkpoint`).
        ``space`` may also be any NNI ``ModelSpace`` (see :meth:`adopt`)."""
        space = self.adopt(space, evaluator)
        self.prepare(space)
        supernet = self.mutate_model(space)
        oneshot_evaluator = self.mutate_evaluator(evaluator)
        self._mutated_model_space = RawFormatModelSpace(supernet, oneshot_evaluator)
        self.attach(supernet)
        self._set_iterations(oneshot_evaluator.trainer)
        # checkpoints hold tensors and plain types only: load them so, never running a pickle's code
        oneshot_evaluator.fit_kwargs['weights_only'] = True
        if resume_from is not None:
            oneshot_evaluator.fit_kwargs['ckpt_path'] = str(resume_from)
        while True:
            self._started = time.time()
            try:
                oneshot_evaluator.evaluate(supernet)
                break
            except SystemExit:
                # Lightning answers Ctrl-C with a graceful shutdown and sys.exit(1): give it back as an
                # interruption that says where the run stopped
                if oneshot_evaluator.trainer.state.status == TrainerStatus.INTERRUPTED:
                    raise Interrupted(self.iteration) from None
                raise
            except NonFiniteError as fault:
                ckpt = self._rollback(fault)
                oneshot_evaluator.fit_kwargs['ckpt_path'] = ckpt
            finally:
                self._wall_time += time.time() - self._started
                self._started = None
        return self.learned_space()

    def _rollback(self, fault: Exception) -> str:
        """Record a numerical fault and pick the checkpoint to restart from, or give up."""
        record = {'iteration': self.iteration, 'error': str(fault),
                  'lr_scale': self.rollback_lr_factor ** (len(self.rollbacks) + 1)}
        if self.checkpoint_dir is None:
            raise NumericalFaultError(f'{fault}; without a checkpoint_dir there is nothing to roll back to '
                                      f'(the CLI always keeps checkpoints)') from None
        if len(self.rollbacks) >= self.max_rollbacks:
            raise NumericalFaultError(
                f'training diverged {len(self.rollbacks) + 1} times (last: {fault}); rolled back '
                f'{len(self.rollbacks)} times already with learning rates x{self.lr_scale:g}. Lower --lr / '
                f'--arc-learning-rate or raise --max-rollbacks') from None
        ckpt = self.find_checkpoint(self.checkpoint_dir)
        if ckpt is None:
            raise NumericalFaultError(f'{fault}; no complete checkpoint to roll back to') from None
        record['checkpoint'] = ckpt
        self.rollbacks.append(record)
        self._pending_lr_scale = record['lr_scale']
        _logger.warning('numerical fault (%s): rolling back to %s with learning rates x%g (rollback %d of at most %d)',
                        fault, ckpt, record['lr_scale'], len(self.rollbacks), self.max_rollbacks)
        for cb in self.on_rollback:
            cb(self, record)
        return ckpt

    # ----- evolution -----
    def _apply_warmup(self, module: AutoSpaceLightningModule) -> None:
        learn_alpha = not self.in_warmup and self.estimator.trains_alpha
        for layers in self._layers.values():
            for layer in layers:
                layer.uniform = not learn_alpha
                layer._arch_alpha.requires_grad_(learn_alpha)

    def _sample_next(self) -> None:
        self.loop.sample()
        self._apply_branches()

    def eval_batch(self, dataset) -> tuple:
        """This iteration's held-out images for ``paired-eval``: ``eval_images`` of ``dataset``, a draw
        seeded by (seed, iteration) that leaves every other random stream alone (so resume is exact)."""
        from torch.utils.data import default_collate
        n = min(self.eval_images, len(dataset))
        rs = np.random.RandomState([0 if self.seed is None else int(self.seed), int(self.iteration)])
        idx = np.sort(rs.choice(len(dataset), size=n, replace=False))
        x, y = default_collate([dataset[int(i)] for i in idx])[:2]
        return x, y

    def _apply_branches(self) -> None:
        for g, layers in self._layers.items():
            pop = self.populations[g]
            cells = [pop.find(k).cell for k in self.sampled[g] if pop.find(k) is not None]
            ref = self.references[g] if self.references is not None else None
            for layer in layers:
                layer.set_branches(cells, ref)
                layer.path_mode = self.estimator.arch_path_mode or 'sum'
                layer.weight_path_mode = self.estimator.weight_path_mode
                layer.generator = self._torch_gen

    def _expected_madds(self) -> float:
        probs = {}
        for layers in self._layers.values():
            for layer in layers:
                probs.update({layer.label: {k: float(v.detach()) for k, v in layer.export_probs({})[layer.label].items()}})
        return float(self.profiler.expectation(probs))

    def _end_iteration(self, module: Optional[AutoSpaceLightningModule], *, val_acc: float = float('nan'),
                       val_loss: float = float('nan'), scores: Optional[Dict[str, Dict[str, float]]] = None,
                       steps: Optional[int] = None) -> dict:
        """The iteration boundary: Eqn 5 on ``scores`` (``{group: {cell key: r}}``, the estimator's
        measurements; ``None`` in warm-up), the convergence test, and the next picks."""
        record = self.loop.tell(None if self.in_warmup else scores, val_acc=val_acc, val_loss=val_loss,
                                steps=steps, expected_madds=self._expected_madds())
        if not self.finished:
            self._apply_branches()
            if module is not None:
                module.reset_arch_optimizer_state()
        for cb in self.on_iteration_end:
            cb(self, record)
        return record

    # ----- results -----
    def learned_space(self) -> LearnedSpace:
        """The top-M cells per group (plus the reference cells with ``keep_reference``)."""
        if not self.populations:
            raise RuntimeError('AutoSpace has not been run yet')
        groups, thin_evidence = {}, {}
        layout = self.layout
        for g, pop in self.populations.items():
            # the reference branch is listed by keep_reference; every other member competes on fitness
            # (in an adopted space that includes the user's other candidates)
            top = self.loop.learned(g)
            def name(c, g=g):
                return layout.user_name(g, c)
            cells = [LearnedCell(m.cell, m.fitness, m.reference, name(m.cell)) for m in top]
            # cells short of min_evals rank after all others; a short run may still need them to fill M
            thin = [str(m.cell) for m in top if m.evals < self.min_evals]
            if thin:
                thin_evidence[g] = thin
            if self.keep_reference and self.references is not None:
                ref = self.references[g]
                if ref.key not in {c.cell.key for c in cells}:
                    member = pop.find(ref.key)
                    cells.append(LearnedCell(ref, member.fitness if member else 1.0, True, name(ref)))
            groups[g] = cells
        from .. import __version__
        options = self.options()
        prov = {'package_version': __version__, 'iterations': self.iteration,
                'converged': bool(self.history and self.history[-1].get('converged')),
                'wall_time_s': round(self._wall_time, 3), 'dataset': self.dataset_name, 'options': options,
                'rollbacks': self.rollbacks,
                # learned cells with fewer than min_evals scores of their own, by group (a short run)
                'thin_evidence': thin_evidence}
        prov = json.loads(json.dumps(prov, default=str))   # plain JSON types, so save/load round-trips
        return LearnedSpace(self.layout, groups, None if self.references is None else dict(self.references),
                            self.budget_madds, self.seed, prov,
                            base=self.space.base)

    def options(self) -> dict:
        """Every option (:class:`~autospace_nni.config.AutoSpaceConfig`) as plain JSON values, resolved where
        the run resolved it (the reference cells, ``final_iterations``, ``iterations``): the learned space's
        provenance, everything that can change the result."""
        out = {}
        for name in AutoSpaceConfig.names():
            if name == 'reference':
                opt = self.reference_option
                value = (None if opt is None else opt if isinstance(opt, str) else
                         {g: str(c) for g, c in (self.references or {}).items()} or str(opt))
            elif name == 'seed_cells':
                opt = self.seed_cells
                value = None if opt is None else ({g: [str(c) for c in v] for g, v in opt.items()}
                                                  if isinstance(opt, dict) else [str(c) for c in opt])
            else:
                value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return json.loads(json.dumps(out, default=str))

    def list_models(self, sort: bool = True, limit: Optional[int] = 1):
        """The best architecture inside the learned space: each block takes its group's fittest cell."""
        learned = self.learned_space()
        space = learned.model_space()
        raw = RawFormatModelSpace(space, None)
        # in an adopted space the choices left alone keep the values they had during the evolution
        pinned = self.space.pin or {}
        yield raw.freeze({**pinned, **learned.best_sample()})

    # ----- checkpoint (autospace_nni/strategy/checkpoint.py) -----
    CHECKPOINT, PREVIOUS = CHECKPOINT, PREVIOUS

    def save_checkpoint(self, trainer) -> str:
        """Write the checkpoint of this iteration boundary into ``checkpoint_dir``, atomically."""
        return save_atomic(trainer, self.checkpoint_dir)

    find_checkpoint = staticmethod(find_checkpoint)

    def evolution_state(self) -> dict:
        # plain Python types only, so Lightning's weights_only checkpoint loading accepts it
        running = 0.0 if self._started is None else time.time() - self._started   # this process's share so far
        return {**self.loop.state_dict(), 'wall_time': self._wall_time + running, 'lr_scale': self.lr_scale,
                'rollbacks': copy.deepcopy(self.rollbacks)}

    def load_evolution_state(self, state: dict) -> None:
        self.loop.load_state_dict(state)
        self._wall_time = float(state.get('wall_time', 0.0))
        # a rollback restores an older checkpoint: keep the faults and learning-rate scale seen since
        saved = list(state.get('rollbacks', []))
        if len(saved) >= len(self.rollbacks):
            self.rollbacks = copy.deepcopy(saved)
        self.lr_scale = float(state.get('lr_scale', 1.0))   # what the checkpoint's optimizers hold
        if self._layers:
            self._apply_branches()

    def state_dict(self) -> dict:
        """The evolution state (:meth:`evolution_state`) plus the supernet's weights, α and buffers."""
        state = self.evolution_state()
        if self._mutated_model_space is not None:
            state['supernet'] = {k: v.detach().clone() for k, v in self.supernet.state_dict().items()}
            state.update(super().state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.load_evolution_state(state)   # also re-applies the branches, before α is loaded
        if self._mutated_model_space is not None:
            if 'supernet' in state:
                self.supernet.load_state_dict(state['supernet'])
            super().load_state_dict(state)


def _input_shape(evaluator) -> Optional[tuple]:
    """One training example's shape, read from the dataset (no loader iteration, so no RNG is used)."""
    loader = getattr(evaluator, 'train_dataloaders', None)
    if isinstance(loader, (list, tuple)) and loader:
        loader = loader[0]
    dataset = getattr(loader, 'dataset', None)
    if dataset is None:
        return None
    x = dataset[0]
    x = x[0] if isinstance(x, (list, tuple)) else x
    return tuple(x.shape) if torch.is_tensor(x) else None


#: options the constructor does not copy as they are (it resolves them or they live elsewhere)
_DERIVED = {'n_nodes', 'ops', 'expand_choices', 'act_choices', 'se_choices', 'edge_prob', 'reference',
            'final_iterations', 'iterations'}

for _name in ('n_nodes', 'ops', 'expand_choices', 'act_choices', 'se_choices', 'edge_prob'):
    setattr(AutoSpace, _name, property(lambda self, _n=_name: getattr(self.sampler, _n)))
AutoSpace.__doc__ = AutoSpace.__doc__.rstrip() + '\n\n' + textwrap.indent(options_doc(), '    ') + '\n'
AutoSpace.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter('self', inspect.Parameter.POSITIONAL_ONLY),
     inspect.Parameter('config', inspect.Parameter.POSITIONAL_ONLY, default=None),
     *(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
       for f in dataclasses.fields(AutoSpaceConfig)),
     inspect.Parameter('checkpoint_dir', inspect.Parameter.KEYWORD_ONLY, default=None),
     inspect.Parameter('mutation_hooks', inspect.Parameter.KEYWORD_ONLY, default=None)])
