import gzip
import os
import struct

import numpy as np
import pytest
import torch

from autospace_nni.data import load_dataset, read_idx, FASHION_MNIST_DIR
from autospace_nni.errors import DatasetError


def _rows(ds):
    return {tuple(x.flatten().tolist()) for x, _ in zip(*ds.tensors)}


def test_digits_splits_are_deterministic_and_disjoint():
    a = load_dataset('digits', seed=0)
    b = load_dataset('digits', seed=0)
    c = load_dataset('digits', seed=1)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    # the test split does not move with the seed
    assert torch.equal(a.test.tensors[1], c.test.tensors[1])
    tr, va, te = _rows(a.train), _rows(a.val), _rows(a.test)
    assert not (tr & te) and not (va & te)


def _write_idx(path, arr, gz):
    header = struct.pack('>BBBB', 0, 0, 0x08, arr.ndim) + struct.pack('>' + 'I' * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, 'wb') as f:
        f.write(data)


@pytest.mark.parametrize('gz', [True, False])
def test_idx_folder_loads(tmp_path, gz):
    rng = np.random.RandomState(0)
    suffix = '.gz' if gz else ''
    _write_idx(tmp_path / f'train-images-idx3-ubyte{suffix}', rng.randint(0, 255, (60, 28, 28)), gz)
    _write_idx(tmp_path / f'train-labels-idx1-ubyte{suffix}', rng.randint(0, 10, 60), gz)
    _write_idx(tmp_path / f't10k-images-idx3-ubyte{suffix}', rng.randint(0, 255, (12, 28, 28)), gz)
    _write_idx(tmp_path / f't10k-labels-idx1-ubyte{suffix}', rng.randint(0, 10, 12), gz)
    d = load_dataset('fashion-mnist', str(tmp_path), seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (50, 10, 12)
    assert d.input_shape == (1, 28, 28)
    raw = read_idx(tmp_path / f't10k-labels-idx1-ubyte{suffix}')
    assert torch.equal(d.test.tensors[1], torch.from_numpy(raw.astype(np.int64)))


def test_truncated_idx_is_an_error(tmp_path):
    p = tmp_path / 'x-idx1-ubyte'
    _write_idx(p, np.arange(10), gz=False)
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(DatasetError, match='truncated'):
        read_idx(p)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match='apt-get install -y dataset-fashion-mnist'):
        load_dataset('fashion-mnist', str(tmp_path / 'nowhere'))
    with pytest.raises(DatasetError, match='apt-get install -y dataset-fashion-mnist'):
        load_dataset('fashion-mnist', str(tmp_path))       # exists but empty
    with pytest.raises(DatasetError, match='not downloadable'):
        load_dataset('cifar10', str(tmp_path / 'nowhere'))
    with pytest.raises(DatasetError, match='unknown dataset'):
        load_dataset('imagenet')


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason='Debian dataset-fashion-mnist not installed')
def test_real_fashion_mnist_official_split():
    d = load_dataset('fashion-mnist', seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (50000, 10000, 10000)
    assert torch.bincount(d.test.tensors[1]).tolist() == [1000] * 10
