import os

import numpy as np
import pytest
import torch

os.environ.setdefault('PYTHONHASHSEED', '0')
# two threads on this 2-core machine; OMP_NUM_THREADS (e.g. 1 beside a benchmark: oversubscribed torch threads
# spin and run many times slower) wins
torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS') or max(1, min(2, os.cpu_count() or 1))))


@pytest.fixture
def rng():
    return np.random.RandomState(0)
