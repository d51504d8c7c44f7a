"""Datasets as in-memory tensors with deterministic splits: ``train`` (weights), ``val`` (held out, for α
and search metrics) and ``test`` (the official test split, for final numbers only).

* ``digits``: sklearn's bundled 8x8 digits (1,797 images). It has no official test split, so a fixed 20%
  (seed-independent, so test numbers stay comparable across seeds) is held out as test.
* ``fashion-mnist``: a folder of IDX files, gzipped or not (Debian: ``apt-get install -y
  dataset-fashion-mnist`` gives ``/usr/share/datasets/fashion-mnist``); official 60k/10k split.
* ``cifar10``: a folder the user already has, read through torchvision with ``download=False``
  (nothing is ever downloaded).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .errors import DatasetError

__all__ = ['DataSplits', 'load_dataset', 'read_idx', 'DATASETS', 'FASHION_MNIST_DIR']

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
DATASETS = ('digits', 'fashion-mnist', 'cifar10')
_TEST_SEED = 20211011  # fixed: the digits test split does not move with --seed


@dataclasses.dataclass
class DataSplits:
    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: Tuple[int, int, int]

    def summary(self) -> str:
        return (f'{self.name}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)}, '
                f'input {"x".join(map(str, self.input_shape))}, {self.num_classes} classes')


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == '.gz' else open
    with opener(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f'{path} is not an IDX file (bad magic number)')
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}
    if dtype_code not in dtypes:
        raise DatasetError(f'{path}: unknown IDX data type 0x{dtype_code:02x}')
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DatasetError(f'{path}: IDX header says {shape} but the file holds {arr.size} values (truncated?)')
    return arr.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + '.gz', stem.replace('-idx', '.idx'), stem.replace('-idx', '.idx') + '.gz'):
        p = folder / name
        if p.exists():
            return p
    return None


def _split_train_val(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int):
    n = len(x)
    perm = torch.from_numpy(np.random.RandomState(seed).permutation(n))
    n_val = int(round(n * val_fraction))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _normalise(x: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def _finish(name, xtr, ytr, xte, yte, num_classes, val_fraction, seed, limit) -> DataSplits:
    (xtr, ytr), (xva, yva) = _split_train_val(xtr, ytr, val_fraction, seed)
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
        xva, yva = xva[:max(1, limit // 4)], yva[:max(1, limit // 4)]
    ref = xtr
    xtr, xva, xte = _normalise(xtr, ref), _normalise(xva, ref), _normalise(xte, ref)
    return DataSplits(name, TensorDataset(xtr, ytr), TensorDataset(xva, yva), TensorDataset(xte, yte),
                      num_classes, tuple(xtr.shape[1:]))


def _digits(val_fraction, seed, limit) -> DataSplits:
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.RandomState(_TEST_SEED).permutation(len(x)))
    n_test = len(x) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return _finish('digits', x[tr], y[tr], x[te], y[te], 10, val_fraction, seed, limit)


def _fashion(data_dir, val_fraction, seed, limit) -> DataSplits:
    folder = Path(data_dir or FASHION_MNIST_DIR)
    hint = ('install it with "apt-get install -y dataset-fashion-mnist" (gives ' + FASHION_MNIST_DIR +
            ') or pass --data-dir with a folder of IDX files (train-images-idx3-ubyte[.gz], ...)')
    if not folder.is_dir():
        raise DatasetError(f'Fashion-MNIST folder {folder} does not exist: {hint}')
    files = {}
    for key, stem in [('xtr', 'train-images-idx3-ubyte'), ('ytr', 'train-labels-idx1-ubyte'),
                      ('xte', 't10k-images-idx3-ubyte'), ('yte', 't10k-labels-idx1-ubyte')]:
        p = _find_idx(folder, stem)
        if p is None:
            raise DatasetError(f'{folder} has no {stem}[.gz]: {hint}')
        files[key] = read_idx(p)
    xtr = torch.from_numpy(files['xtr'].astype(np.float32) / 255.0).unsqueeze(1)
    xte = torch.from_numpy(files['xte'].astype(np.float32) / 255.0).unsqueeze(1)
    ytr = torch.from_numpy(files['ytr'].astype(np.int64))
    yte = torch.from_numpy(files['yte'].astype(np.int64))
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DatasetError(f'{folder}: image and label counts differ')
    return _finish('fashion-mnist', xtr, ytr, xte, yte, 10, val_fraction, seed, limit)


def _cifar10(data_dir, val_fraction, seed, limit) -> DataSplits:
    hint = ('CIFAR-10 is not downloadable on this machine; pass --data-dir with a folder that already holds '
            "torchvision's cifar-10-batches-py/")
    if data_dir is None or not os.path.isdir(data_dir):
        raise DatasetError(f'CIFAR-10 folder {data_dir} does not exist: {hint}')
    try:
        import torchvision
        tr = torchvision.datasets.CIFAR10(data_dir, train=True, download=False)
        te = torchvision.datasets.CIFAR10(data_dir, train=False, download=False)
    except (RuntimeError, OSError) as e:
        raise DatasetError(f'cannot read CIFAR-10 from {data_dir} ({e}): {hint}') from None

    def tensors(ds):
        x = torch.from_numpy(np.asarray(ds.data, dtype=np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(ds.targets, dtype=torch.long)
    xtr, ytr = tensors(tr)
    xte, yte = tensors(te)
    return _finish('cifar10', xtr, ytr, xte, yte, 10, val_fraction, seed, limit)


def load_dataset(name: str = 'digits', data_dir: Optional[str] = None, *, seed: int = 0,
                 val_fraction: Optional[float] = None, limit: Optional[int] = None) -> DataSplits:
    """Load ``name`` with deterministic splits. ``limit`` caps the train split (and val at a quarter of it)
    for quick runs; the test split is never cut."""
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise DatasetError(f'val_fraction must be in (0, 1), got {val_fraction}')
    if name == 'digits':
        return _digits(val_fraction or 0.25, seed, limit)
    if name in ('fashion-mnist', 'fashion_mnist', 'fashionmnist'):
        return _fashion(data_dir, val_fraction or (1 / 6), seed, limit)
    if name == 'cifar10':
        return _cifar10(data_dir, val_fraction or 0.1, seed, limit)
    raise DatasetError(f'unknown dataset {name!r}; choose one of {", ".join(DATASETS)}')
