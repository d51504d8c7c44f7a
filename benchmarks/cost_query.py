"""Time one analytic cost query of a cell against NNI's FlopsParamsProfiler on the same block.

    .venv/bin/python benchmarks/cost_query.py [--n 2000]

Writes a section of docs/benchmarks.md (machine, command, date, figures)."""

import argparse
import sys
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section  # noqa: E402
from autospace_nni.cells import Cell  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.RandomState(0)
    cells = [Cell.random(rng, n_nodes=4) for _ in range(args.n)]
    shape = (24, 40, 2, 28, 28)

    t = timeit.Timer(lambda: [c.cost(*shape) for c in cells]).repeat(5, 1)
    ours_us = min(t) / len(cells) * 1e6

    # NNI's profiler on an NNI space whose LayerChoice holds the same cells (a fair "price one sample").
    import torch
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from nni.nas.profiler.pytorch.flops import FlopsParamsProfiler

    subset = cells[:16]

    class OneBlock(ModelSpace):
        def __init__(self):
            super().__init__()
            self.block = LayerChoice({f'c{i}': c.build(24, 40, 2) for i, c in enumerate(subset)}, label='b')

        def forward(self, x):
            return self.block(x)

    # NNI 3.0 has no shape formulas for these element-wise activations; they keep the shape.
    from torch import nn
    from nni.nas.profiler.pytorch.utils.shape_formula import register_shape_inference_formula, keep_shape_formula
    for act in (nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid):
        register_shape_inference_formula(act, keep_shape_formula)
    space = OneBlock()
    t0 = time.perf_counter()
    prof = FlopsParamsProfiler(space, torch.randn(1, 24, 28, 28), count_bias=False, count_normalization=False,
                               count_activation=False)
    build_s = time.perf_counter() - t0
    samples = [{'b': f'c{i}'} for i in range(len(subset))] * 20
    t = timeit.Timer(lambda: [prof.profile(s) for s in samples]).repeat(3, 1)
    nni_us = min(t) / len(samples) * 1e6

    agree = sum((lambda r, cc: int(r.flops) == cc.madds)(prof.profile({'b': f'c{i}'}), c.cost(*shape)) for i, c in enumerate(subset))

    cmd = 'python benchmarks/cost_query.py --n %d' % args.n
    body = (f'| query | time per query | ratio |\n|---|---|---|\n'
            f'| `Cell.cost` (analytic, random 4-node cells, 24→40 ch, stride 2, 28x28) | {ours_us:.1f} µs | 1.0 |\n'
            f'| NNI `FlopsParamsProfiler.profile(sample)` (same cells in a LayerChoice; '
            f'profiler build {build_s:.2f} s not included) | {nni_us:.1f} µs | {nni_us / ours_us:.1f}x |\n\n'
            f'NNI\'s profiler (bias, BN and activations off) gives the same MAdds as `Cell.cost` for '
            f'{agree} of {len(subset)} cells (its params leave out BN and biases with these flags, so they are not compared).\n\n'
            f'Goal ≤ 50 µs per query: {"met" if ours_us <= 50 else "NOT met"}.\n')
    write_section('Cost query', cmd, body)
    print(body)


if __name__ == '__main__':
    main()
