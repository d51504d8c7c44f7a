"""Lightning evaluators with the standard recipe: SGD with momentum, cosine learning rate, label smoothing.

They are NNI evaluators (``nni.nas.evaluator.pytorch.Lightning``), so they plug into ``NasExperiment``
and into one-shot strategies unchanged.
"""

from __future__ import annotations

from typing import Optional

import nni
import torch
from torch import nn, optim

from nni.nas.evaluator.pytorch import DataLoader, Lightning, Trainer
from nni.nas.evaluator.pytorch.lightning import ClassificationModule

from .data import DataSplits

__all__ = ['RecipeClassificationModule', 'make_evaluator', 'example_shape']


@nni.trace
def sgd_cosine(params, *, lr: float, epochs: int, weight_decay: float = 4e-5, momentum: float = 0.9,
               nesterov: bool = True):
    """The package's one training recipe: SGD with (Nesterov) momentum, cosine decay over ``epochs``
    (stepped once per epoch). Supernets, searches and retrains all use it, so they compare."""
    opt = optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(epochs)))


class RecipeClassificationModule(ClassificationModule):
    """NNI's ``ClassificationModule`` with SGD + momentum, a per-epoch cosine schedule and label smoothing."""

    def __init__(self, learning_rate: float = 0.05, momentum: float = 0.9, weight_decay: float = 4e-5,
                 label_smoothing: float = 0.0, num_classes: int = 10, nesterov: bool = True):
        super().__init__(criterion=nn.CrossEntropyLoss, learning_rate=learning_rate, weight_decay=weight_decay,
                         optimizer=optim.SGD, export_onnx=False, num_classes=num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.momentum = momentum
        self.nesterov = nesterov

    #: NNI's module reports the last training accuracy as a trial's FINAL result when fitting ends; the
    #: AutoSpace trial reports its own results, so the evolve pipeline switches this off
    report_to_nni = True

    def _final_report(self):
        if self.report_to_nni:
            super()._final_report()

    def on_validation_epoch_end(self):
        if self.report_to_nni:
            super().on_validation_epoch_end()

    def configure_optimizers(self):
        opt, sched = sgd_cosine(self.parameters(), lr=self.hparams.learning_rate, epochs=self.trainer.max_epochs or 1,
                                weight_decay=self.hparams.weight_decay, momentum=self.momentum,
                                nesterov=self.nesterov)
        return [opt], [{'scheduler': sched, 'interval': 'epoch'}]


def make_evaluator(data: DataSplits, *, max_epochs: int, batch_size: int = 64, learning_rate: float = 0.05,
                   momentum: float = 0.9, weight_decay: float = 4e-5, label_smoothing: float = 0.0,
                   accelerator: str = 'cpu', devices=1, strategy: str = 'auto', logger=False,
                   callbacks: Optional[list] = None, default_root_dir: Optional[str] = None,
                   enable_progress_bar: bool = False, seed: int = 0, num_workers: int = 0,
                   report_to_nni: bool = True, **trainer_kwargs) -> Lightning:
    """An NNI ``Lightning`` evaluator that trains on ``data.train`` and validates on ``data.val``."""
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(data.train, batch_size=batch_size, shuffle=True, drop_last=len(data.train) > batch_size,
                       generator=gen, num_workers=num_workers)
    val = DataLoader(data.val, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1),
                     num_workers=num_workers)
    module = RecipeClassificationModule(learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                                        label_smoothing=label_smoothing, num_classes=data.num_classes)
    module.report_to_nni = report_to_nni
    trainer = Trainer(max_epochs=max_epochs, accelerator=accelerator, devices=devices, strategy=strategy,
                      logger=logger, callbacks=callbacks or [], enable_checkpointing=False,
                      enable_progress_bar=enable_progress_bar, enable_model_summary=False,
                      default_root_dir=default_root_dir, num_sanity_val_steps=0, log_every_n_steps=1,
                      **trainer_kwargs)
    return Lightning(module, trainer, train_dataloaders=train, val_dataloaders=val)


def example_shape(evaluator) -> Optional[tuple]:
    """One training example's shape, read from ``evaluator``'s training dataset (no loader iteration, so no
    RNG is used); ``None`` when it has none to read."""
    loader = getattr(evaluator, 'train_dataloaders', None)
    if isinstance(loader, (list, tuple)) and loader:
        loader = loader[0]
    dataset = getattr(loader, 'dataset', None)
    if dataset is None:
        return None
    x = dataset[0]
    x = x[0] if isinstance(x, (list, tuple)) else x
    return tuple(x.shape) if torch.is_tensor(x) else None
