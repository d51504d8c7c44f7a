"""Numerical-fault rollback: when training produces NaN/inf, go back to the last complete checkpoint with
the learning rates scaled by ``rollback_lr_factor`` (again for each further fault), at most
``max_rollbacks`` times.

:class:`Rollbacks` knows no evolution: the strategy asks it for the checkpoint to restart from
(:meth:`Rollbacks.handle`), the Lightning module has it rescale the restored optimizers
(:meth:`Rollbacks.rescale`), and its state travels in the evolution state of every checkpoint.
"""

from __future__ import annotations

import copy
import logging
from typing import Callable, List, Optional

from ..errors import NumericalFaultError

__all__ = ['Rollbacks']

_logger = logging.getLogger(__name__)


class Rollbacks:
    """The faults survived so far (``records``) and the learning-rate scale they brought (``lr_scale``)."""

    def __init__(self, *, max_rollbacks: int, factor: float):
        self.max_rollbacks = max_rollbacks
        self.factor = factor
        self.records: List[dict] = []       # one per numerical fault survived
        self.lr_scale = 1.0                 # the scale the optimizers' learning rates hold now
        self.pending: Optional[float] = None   # the scale to bring them to when training restarts
        self.callbacks: List[Callable] = []    # callbacks(strategy, record), run by the strategy

    def handle(self, fault: Exception, *, iteration: int, checkpoint_dir: Optional[str],
               find_checkpoint: Callable[[str], Optional[str]]) -> dict:
        """Record ``fault`` and return its record (``record['checkpoint']`` is where to restart), or raise
        :class:`~autospace_nni.errors.NumericalFaultError` when there is nothing, or no try, left."""
        record = {'iteration': iteration, 'error': str(fault),
                  'lr_scale': self.factor ** (len(self.records) + 1)}
        if checkpoint_dir is None:
            raise NumericalFaultError(f'{fault}; without a checkpoint_dir there is nothing to roll back to '
                                      f'(the CLI always keeps checkpoints)') from None
        if len(self.records) >= self.max_rollbacks:
            raise NumericalFaultError(
                f'training diverged {len(self.records) + 1} times (last: {fault}); rolled back '
                f'{len(self.records)} times already with learning rates x{self.lr_scale:g}. Lower --lr / '
                f'--arc-learning-rate or raise --max-rollbacks') from None
        ckpt = find_checkpoint(checkpoint_dir)
        if ckpt is None:
            raise NumericalFaultError(f'{fault}; no complete checkpoint to roll back to') from None
        record['checkpoint'] = ckpt
        self.records.append(record)
        self.pending = record['lr_scale']
        _logger.warning('numerical fault (%s): rolling back to %s with learning rates x%g (rollback %d of at most %d)',
                        fault, ckpt, record['lr_scale'], len(self.records), self.max_rollbacks)
        return record

    def rescale(self, optimizers, scheduler_configs) -> None:
        """After a rollback the checkpoint restored its learning rates (at ``lr_scale``): bring them to the
        pending scale, ``factor ** rollbacks``, so repeated faults keep lowering them."""
        if self.pending is None:
            return
        target, self.pending = self.pending, None
        ratio = target / self.lr_scale
        for opt in optimizers:
            for group in opt.param_groups:
                group['lr'] *= ratio
                if 'initial_lr' in group:
                    group['initial_lr'] *= ratio
        for config in scheduler_configs:
            sched = config.scheduler
            if hasattr(sched, 'base_lrs'):
                sched.base_lrs = [lr * ratio for lr in sched.base_lrs]
        self.lr_scale = target

    def state_dict(self) -> dict:
        return {'lr_scale': self.lr_scale, 'rollbacks': copy.deepcopy(self.records)}

    def load_state_dict(self, state: dict) -> None:
        # a rollback restores an older checkpoint: keep the faults seen since
        saved = list(state.get('rollbacks', []))
        if len(saved) >= len(self.records):
            self.records = copy.deepcopy(saved)
        self.lr_scale = float(state.get('lr_scale', 1.0))   # what the checkpoint's optimizers hold
