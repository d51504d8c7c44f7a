"""AutoSpace's Lightning module: the training step (the α step of Eqn 4 on held-out data, then the weight
step), the fitness measurements at the iteration boundary (:mod:`autospace_nni.fitness`), the DDP sync of
the evolution, and what a Lightning checkpoint carries (the evolution, every RNG, the loaders' shuffling).

The evolution itself is :class:`~autospace_nni.strategy.loop.EvolutionLoop`, reached through the strategy
(:class:`~autospace_nni.strategy.autospace.AutoSpace`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List

import numpy as np
import torch
from torch import nn, optim

from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule

from ..errors import NonFiniteError
from ..fitness import paired_scores
from ..space.supernet import AutoSpaceMixedLayer

if TYPE_CHECKING:
    from .autospace import AutoSpace

__all__ = ['AutoSpaceLightningModule']


class AutoSpaceLightningModule(BaseOneShotLightningModule):
    """The search part: α step on held-out data, weight step on train data, iteration boundaries."""

    def __init__(self, training_module, *, strategy: 'AutoSpace'):
        super().__init__(training_module)
        self._strategy_ref = [strategy]   # a list, so Lightning/nn.Module do not treat it as a child
        self._val_correct = 0
        self._val_total = 0
        self._val_loss_sum = 0.0
        self._steps_in_iteration = 0

    @property
    def strategy(self) -> 'AutoSpace':
        return self._strategy_ref[0]

    def mixed_layers(self) -> List[AutoSpaceMixedLayer]:
        return [m for m in self.supernet_modules() if isinstance(m, AutoSpaceMixedLayer)]

    def arch_parameters(self) -> List[nn.Parameter]:
        return [p for m in self.mixed_layers() for p in m.arch_parameters()]

    def configure_architecture_optimizers(self):
        s = self.strategy
        return optim.Adam(self.arch_parameters(), lr=s.arc_learning_rate, betas=s.arc_betas,
                          weight_decay=s.arc_weight_decay)

    def postprocess_weight_optimizers(self, optimizer):
        blacklist = set(self.arch_parameters())

        def strip(opt):
            if isinstance(opt, optim.Optimizer):
                for group in opt.param_groups:
                    group['params'] = [p for p in group['params'] if p not in blacklist]
                return opt
            if isinstance(opt, (list, tuple)):
                return type(opt)(strip(o) for o in opt)
            if isinstance(opt, dict):
                return {k: strip(v) for k, v in opt.items()}
            return opt
        return strip(optimizer)

    def reset_arch_optimizer_state(self) -> None:
        opt = self.architecture_optimizers()
        if opt is None:
            return
        inner = getattr(opt, 'optimizer', opt)
        for p in self.arch_parameters():
            inner.state.pop(p, None)

    # ----- one step -----
    def _val_forward(self, batch):
        x, y = batch
        module = self.training_module
        logits = module(x)
        criterion = getattr(module, 'criterion', None)
        loss = criterion(logits, y) if criterion is not None else nn.functional.cross_entropy(logits, y)
        self._val_correct += int((logits.detach().argmax(-1) == y).sum())
        self._val_total += int(y.numel())
        self._val_loss_sum += float(loss.detach()) * int(y.numel())
        return loss

    def training_step(self, batch, batch_idx):
        s = self.strategy
        trn_batch, val_batch = batch['train'], batch['val']
        if not s.estimator.trains_alpha:
            pass   # paired-eval: the held-out split is used only by the end-of-iteration evaluation
        elif s.in_warmup:
            with torch.no_grad():
                self._val_forward(val_batch)
        else:
            arc_optim = self.architecture_optimizers()
            arc_optim.zero_grad()
            layers = self.mixed_layers()
            for layer in layers:
                layer.arch_step = True
            try:
                loss = self._val_forward(val_batch)
            finally:
                for layer in layers:
                    layer.arch_step = False
            if s.penalty is not None:
                loss, details = s.penalty(loss, self.export_probs())
                self.log_dict({f'penalty/{k}': float(v) for k, v in details.items()})
            if not torch.isfinite(loss):
                raise NonFiniteError(f'non-finite α loss {float(loss.detach())} at iteration {s.iteration}')
            self.manual_backward(loss)
            arc_optim.step()

        out = self.training_module.training_step(trn_batch, batch_idx)
        w_loss = out['loss'] if isinstance(out, dict) else out
        if not torch.isfinite(w_loss):
            raise NonFiniteError(f'non-finite training loss {float(w_loss)} at iteration {s.iteration}')
        self.advance_optimization(w_loss, batch_idx, s.gradient_clip_val)
        self.advance_lr_schedulers(batch_idx)

        self._steps_in_iteration += 1
        if s.steps_per_iteration is not None and self._steps_in_iteration >= s.steps_per_iteration:
            self._iteration_boundary()
        return out

    def on_train_epoch_start(self):
        self.strategy.apply_warmup()
        return super().on_train_epoch_start()

    def on_train_epoch_end(self):
        if self.strategy.steps_per_iteration is None:
            self._iteration_boundary()
        return super().on_train_epoch_end()

    def _check_finite(self) -> None:
        # weights and α: a NaN that has not reached a loss yet must not reach a checkpoint either
        for name, p in self.training_module.named_parameters():
            if not torch.isfinite(p).all():
                kind = 'α' if 'alpha' in name else 'weight'
                raise NonFiniteError(f'non-finite {kind} {name} at iteration {self.strategy.iteration}')

    def on_train_start(self):
        s = self.strategy
        s.rollback.rescale(self.trainer.optimizers, self.trainer.lr_scheduler_configs)   # after a rollback
        need_first = s.checkpoint_dir is not None and s.find_checkpoint(s.checkpoint_dir) is None
        if self.trainer.world_size > 1:   # saving is collective: every rank must take the same decision
            need_first = self.trainer.strategy.broadcast(need_first)
        if need_first:
            s.save_checkpoint(self.trainer)   # the iteration-0 boundary, so even a first-iteration fault rolls back
        return super().on_train_start()

    def _heldout_dataset(self):
        # the held-out loader of the CombinedLoader that AutoSpace.train_dataloader built
        return self.strategy._mutated_model_space.evaluator.train_dataloaders.flattened[1].dataset

    def _eval_batch(self, dataset) -> tuple:
        """This iteration's held-out images for ``paired-eval``: ``eval_images`` of ``dataset``, a draw
        seeded by (seed, iteration) that leaves every other random stream alone (so resume is exact)."""
        from torch.utils.data import default_collate
        s = self.strategy
        n = min(s.eval_images, len(dataset))
        rs = np.random.RandomState([0 if s.seed is None else int(s.seed), int(s.iteration)])
        idx = np.sort(rs.choice(len(dataset), size=n, replace=False))
        x, y = default_collate([dataset[int(i)] for i in idx])[:2]
        return x, y

    def _paired_scores(self, score: bool = True) -> tuple:
        """``paired-eval``: each sampled cell in its group's blocks, the reference cell everywhere else,
        against the all-reference network, on the same held-out images. Returns the scores per group
        and the held-out accuracy and loss of the all-reference network."""
        s = self.strategy
        x, y = self._eval_batch(self._heldout_dataset())
        x, y = x.to(self.device), y.to(self.device)
        module = self.training_module
        base = {g: (len(ls[0].branches) - 1 if ls[0].has_reference else 0) for g, ls in s.layers.items()}

        def loss_of(active):
            for g, layers in s.layers.items():
                for layer in layers:
                    layer.active = active.get(g, base[g])
            total, correct = 0.0, 0
            for i in range(0, len(x), 256):
                logits = module(x[i:i + 256])
                total += float(nn.functional.cross_entropy(logits, y[i:i + 256], reduction='sum'))
                correct += int((logits.argmax(-1) == y[i:i + 256]).sum())
            return total / len(x), correct / len(x)

        bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        try:
            for m in bns:   # batch statistics, as in training, but the running statistics stay untouched
                m.momentum = 0.0
            with torch.no_grad():
                ref_loss, ref_acc = loss_of({})
                scores = {} if score else None
                for g, layers in (s.layers.items() if score else ()):
                    keys = [c.key for c in layers[0].branches]
                    cells = range(len(keys) - 1) if layers[0].has_reference else range(len(keys))
                    losses = {keys[i]: (ref_loss if i == base[g] else loss_of({g: i})[0]) for i in cells}
                    scores[g] = paired_scores(losses, ref_loss if layers[0].has_reference else None)
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
            for layers in s.layers.values():
                for layer in layers:
                    layer.active = None
        return scores, ref_acc, ref_loss

    def _alpha_scores(self) -> dict:
        # one score per cell and group: the mean of its blocks' r
        scores = {}
        for g, layers in self.strategy.layers.items():
            per_block = [layer.scores() for layer in layers]
            scores[g] = {k: float(np.mean([b[k] for b in per_block])) for k in per_block[0]}
        return scores

    def _iteration_boundary(self):
        self._check_finite()
        s = self.strategy
        steps = self._steps_in_iteration
        scores = None
        if s.estimator.scores_from == 'paired':
            # the held-out accuracy of the iteration is the all-reference network's (warm-up included)
            scores, acc, loss = self._paired_scores(score=not s.in_warmup)
            self._val_correct, self._val_total, self._val_loss_sum = acc, 1, loss
        elif not s.in_warmup:
            scores = self._alpha_scores()
        correct, loss_sum, total = float(self._val_correct), self._val_loss_sum, float(self._val_total)
        if self.trainer.world_size > 1:
            # under DDP each rank saw its own share of the held-out batches: pool the raw sums
            sums = self.trainer.strategy.reduce(torch.tensor([correct, loss_sum, total], device=self.device),
                                                reduce_op='sum')
            correct, loss_sum, total = (float(v) for v in sums)
        val_acc, val_loss = correct / max(1.0, total), loss_sum / max(1.0, total)
        self._val_correct = self._val_total = 0
        self._val_loss_sum = 0.0
        self._steps_in_iteration = 0
        record = self.strategy.end_iteration(self, val_acc=val_acc, val_loss=val_loss, scores=scores, steps=steps)
        if self.trainer.world_size > 1:
            # the population update is computed on rank 0 and broadcast, so every rank holds the same
            # populations and samples the same next cells whatever its α drifted to
            state = self.trainer.strategy.broadcast(self.strategy.evolution_state(), src=0)
            if self.trainer.global_rank != 0:
                self.strategy.load_evolution_state(state)
        self.log_dict({k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if self.strategy.finished:
            self.trainer.should_stop = True
        else:
            self.strategy.apply_warmup()
        if self.strategy.checkpoint_dir is not None:
            self.strategy.save_checkpoint(self.trainer)

    # ----- Lightning checkpoints carry the evolution, the RNGs and the loaders' shuffling state -----
    def _loader_generators(self):
        # the CombinedLoader that AutoSpace.train_dataloader built (the same DataLoader objects Lightning
        # iterates); reachable before Lightning sets up its fit loop, which matters on restore
        gens = []
        try:
            loaders = self.strategy._mutated_model_space.evaluator.train_dataloaders.flattened
        except AttributeError:
            return gens
        for dl in loaders:
            g = getattr(dl, 'generator', None)
            sampler = getattr(dl, 'sampler', None)
            g = g if g is not None else getattr(sampler, 'generator', None)
            gens.append(g)
        return gens

    def on_save_checkpoint(self, checkpoint):
        s = self.strategy
        checkpoint['autospace'] = {
            'evolution': s.evolution_state(),
            'torch_gen': s.path_generator.get_state(),
            'loader_gens': [None if g is None else g.get_state() for g in self._loader_generators()],
            'torch_rng': torch.get_rng_state(),
        }

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get('autospace')
        if state is None:
            return
        s = self.strategy
        s.load_evolution_state(state['evolution'])   # sets the branches before α is loaded
        s.path_generator.set_state(state['torch_gen'])
        torch.set_rng_state(state['torch_rng'])
        # before Lightning creates this epoch's iterators, which draw their shuffling seeds from these
        for g, st in zip(self._loader_generators(), state['loader_gens']):
            if g is not None and st is not None:
                g.set_state(st)
