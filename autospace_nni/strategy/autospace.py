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
from ..config import AutoSpaceConfig, keyword_signature, options_doc
from ..errors import Interrupted, NonFiniteError
from ..cells.genome import Cell
from ..space.adopted import adopt, pin_left_alone
from ..space.exploration import ExplorationSpace
from ..space.learned import LearnedSpace
from ..space.layout import Layout
from ..space.supernet import AutoSpaceMixedLayer
from .evolution import CellSampler
from .admission import admissible_fn, cheapest_costs, resolve_references, seed_cells_for
from .checkpoint import CHECKPOINT, PREVIOUS, find_checkpoint, save_atomic
from .layers import expected_cost, find_layers, pool_options, set_alpha_learning, set_branches
from .loop import EvolutionLoop
from .results import learned_groups, resolved_options
from .rollback import Rollbacks
from ..fitness import estimator as fitness_estimator
from ..training import example_shape
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
        # every name and value is checked here, in one place (ValueError naming the option and its range)
        cfg = AutoSpaceConfig.merged(config, options)
        super().__init__(mutation_hooks=mutation_hooks)
        self.config = cfg
        self.estimator = fitness_estimator(cfg.fitness)
        Cell.random(np.random.RandomState(0), n_nodes=cfg.n_nodes, ops=cfg.ops, expand_choices=cfg.expand_choices,
                    act_choices=cfg.act_choices, se_choices=cfg.se_choices)  # the primitives exist
        for name in set(AutoSpaceConfig.names()) - _DERIVED:
            setattr(self, name, getattr(cfg, name))
        # the config holds sequences as tuples already
        self.sampler = CellSampler(cfg.n_nodes, cfg.ops, cfg.expand_choices, cfg.act_choices, cfg.se_choices,
                                   cfg.edge_prob)
        self.reference_option = cfg.reference
        self.final_iterations = cfg.resolved_final_iterations()
        self.space: Optional[ExplorationSpace] = None   # the space being evolved (prepare)
        self.checkpoint_dir = checkpoint_dir
        self.rollback = Rollbacks(max_rollbacks=cfg.max_rollbacks, factor=cfg.rollback_lr_factor)
        self.path_generator = torch.Generator().manual_seed(0 if cfg.seed is None else cfg.seed)

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
        self.layers: Dict[str, List[AutoSpaceMixedLayer]] = {}   # the supernet's mixed layers by group (attach)
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
        opts = pool_options(self.sampler, cells, self.references, sample_k=self.sample_k, pin=self.space.pin)
        return hook(module, name, memo, {'autospace': opts})

    def adopt(self, space, evaluator=None) -> ExplorationSpace:
        """``space`` itself if it is an :class:`ExplorationSpace`, else the user's NNI ``ModelSpace``
        adopted (:func:`~autospace_nni.space.adopted.adopt`): its adoptable ``LayerChoice``s evolve."""
        if isinstance(space, ExplorationSpace):
            return space
        if not isinstance(space, ModelSpace):
            raise TypeError(f'AutoSpace searches an NNI ModelSpace, got {type(space).__name__}')
        shape = self.input_shape or example_shape(evaluator)
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
        self.layers = find_layers(supernet)
        if set(self.layers) != set(self.populations):
            raise RuntimeError(f'supernet groups {sorted(self.layers)} differ from populations {sorted(self.populations)}')
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
        record = self.rollback.handle(fault, iteration=self.iteration, checkpoint_dir=self.checkpoint_dir,
                                      find_checkpoint=self.find_checkpoint)
        for cb in self.on_rollback:
            cb(self, record)
        return record['checkpoint']

    # the rollback state (autospace_nni/strategy/rollback.py): one record per fault survived, the learning-rate
    # scale they brought, and the callbacks(strategy, fault_record) run after each rollback
    rollbacks = property(lambda self: self.rollback.records)
    lr_scale = property(lambda self: self.rollback.lr_scale)
    on_rollback = property(lambda self: self.rollback.callbacks)

    # ----- evolution -----
    def apply_warmup(self) -> None:
        """Uniform path weights and a frozen α in warm-up (and for estimators that train no α), else α learns."""
        set_alpha_learning(self.layers, not self.in_warmup and self.estimator.trains_alpha)

    def _sample_next(self) -> None:
        self.loop.sample()
        self._apply_branches()

    def _apply_branches(self) -> None:
        pops = self.populations
        branches = {g: [pops[g].find(k).cell for k in self.sampled[g] if pops[g].find(k) is not None] for g in self.layers}
        set_branches(self.layers, branches, self.references, estimator=self.estimator, generator=self.path_generator)

    def end_iteration(self, module: Optional[AutoSpaceLightningModule], *, val_acc: float = float('nan'),
                       val_loss: float = float('nan'), scores: Optional[Dict[str, Dict[str, float]]] = None,
                       steps: Optional[int] = None) -> dict:
        """The iteration boundary: Eqn 5 on ``scores`` (``{group: {cell key: r}}``, the estimator's
        measurements; ``None`` in warm-up), the convergence test, and the next picks."""
        record = self.loop.tell(None if self.in_warmup else scores, val_acc=val_acc, val_loss=val_loss,
                                steps=steps, expected_madds=expected_cost(self.layers, self.profiler))
        if not self.finished:
            self._apply_branches()
            if module is not None:
                module.reset_arch_optimizer_state()
        for cb in self.on_iteration_end:
            cb(self, record)
        return record

    # ----- results (autospace_nni/strategy/results.py) -----
    def learned_space(self) -> LearnedSpace:
        """The top-M cells per group (plus the reference cells with ``keep_reference``)."""
        if not self.populations:
            raise RuntimeError('AutoSpace has not been run yet')
        groups, thin_evidence = learned_groups(self.loop, self.layout, self.references,
                                               keep_reference=self.keep_reference, min_evals=self.min_evals)
        from .. import __version__
        prov = {'package_version': __version__, 'iterations': self.iteration,
                'converged': bool(self.history and self.history[-1].get('converged')),
                'wall_time_s': round(self._wall_time, 3), 'dataset': self.dataset_name, 'options': self.options(),
                'rollbacks': self.rollbacks,
                # learned cells with fewer than min_evals scores of their own, by group (a short run)
                'thin_evidence': thin_evidence}
        prov = json.loads(json.dumps(prov, default=str))   # plain JSON types, so save/load round-trips
        return LearnedSpace(self.layout, groups, None if self.references is None else dict(self.references),
                            self.budget_madds, self.seed, prov, base=self.space.base)

    def options(self) -> dict:
        """Every option (:class:`~autospace_nni.config.AutoSpaceConfig`) as plain JSON values, resolved where
        the run resolved it (the reference cells, ``final_iterations``, ``iterations``): the learned space's
        provenance, everything that can change the result."""
        return resolved_options(self)

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
        return {**self.loop.state_dict(), 'wall_time': self._wall_time + running, **self.rollback.state_dict()}

    def load_evolution_state(self, state: dict) -> None:
        self.loop.load_state_dict(state)
        self._wall_time = float(state.get('wall_time', 0.0))
        self.rollback.load_state_dict(state)
        if self.layers:
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


#: options the constructor does not copy as they are (it resolves them or they live elsewhere)
_DERIVED = {'n_nodes', 'ops', 'expand_choices', 'act_choices', 'se_choices', 'edge_prob', 'reference',
            'final_iterations', 'iterations'}

for _name in ('n_nodes', 'ops', 'expand_choices', 'act_choices', 'se_choices', 'edge_prob'):
    setattr(AutoSpace, _name, property(lambda self, _n=_name: getattr(self.sampler, _n)))
AutoSpace.__doc__ = AutoSpace.__doc__.rstrip() + '\n\n' + textwrap.indent(options_doc(), '    ') + '\n'
AutoSpace.__init__.__signature__ = keyword_signature(
    before=[inspect.Parameter('self', inspect.Parameter.POSITIONAL_ONLY),
            inspect.Parameter('config', inspect.Parameter.POSITIONAL_ONLY, default=None)],
    after=[inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in ('checkpoint_dir', 'mutation_hooks')])
