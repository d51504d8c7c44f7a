"""AutoSpace's checkpoint files: atomic writes at iteration boundaries, finding the newest complete one, and
loading it safely.

A checkpoint is a Lightning checkpoint (weights, α, optimizer and scheduler states, loops) plus the evolution
and every RNG under ``'autospace'``, all tensors and plain Python types, so it is always loaded with
``weights_only=True``: a checkpoint from someone else cannot run code.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import torch

__all__ = ['CHECKPOINT', 'PREVIOUS', 'save_atomic', 'find_checkpoint', 'load_checkpoint']

CHECKPOINT = 'last.ckpt'
PREVIOUS = 'prev.ckpt'

_logger = logging.getLogger(__name__)


def save_atomic(trainer, directory) -> str:
    """Write the trainer's checkpoint into ``directory`` atomically: a temporary file, renamed over
    ``last.ckpt`` after the previous one is kept as ``prev.ckpt``. A kill at any point leaves at least one
    complete checkpoint. Collective under DDP; only global rank 0 writes."""
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f'.tmp-{os.getpid()}.ckpt')
    trainer.save_checkpoint(tmp)
    last, prev = os.path.join(directory, CHECKPOINT), os.path.join(directory, PREVIOUS)
    if not trainer.is_global_zero:
        return last
    if os.path.exists(last):
        os.replace(last, prev)
    os.replace(tmp, last)
    return last


def load_checkpoint(path) -> dict:
    """The checkpoint at ``path``, loaded weights-only (tensors and plain types; never a pickle's code)."""
    return torch.load(path, map_location='cpu', weights_only=True)


def find_checkpoint(directory) -> Optional[str]:
    """The newest checkpoint in ``directory`` that loads completely (a half-written, corrupt or unsafe one is
    skipped for the previous one)."""
    for name in (CHECKPOINT, PREVIOUS):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        try:
            ckpt = load_checkpoint(path)
            if 'autospace' in ckpt and 'state_dict' in ckpt:
                return path
        except Exception:   # truncated, corrupt or not weights-only: fall back to the previous one
            _logger.warning('checkpoint %s is unreadable (half-written?); trying the previous one', path)
    return None
