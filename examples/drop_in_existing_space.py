"""Drop AutoSpace into an existing NNI project: evolve the candidates of your own model space.

Your ``ModelSpace`` stays as it is. AutoSpace replaces only the strategy of your ``NasExperiment``; it
evolves the candidates of every ``LayerChoice`` that maps one tensor to one tensor (your own candidates
seed it), leaves the other choices alone, and gives your space back with the learned candidates, same
labels. Then search that space with any NNI strategy, here DARTS, and train the pick.

    python examples/drop_in_existing_space.py                 # HelloNasSpace (examples/hello_nas_space.py)
    python examples/drop_in_existing_space.py --space proxylessnas   # NNI's hub ProxylessNAS, small

Copy it and put your own space where ``build_space`` is.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nni.nas.experiment import NasExperiment
from nni.nas.oneshot.pytorch.strategy import DARTS

from autospace_nni import AutoSpace, load_dataset, make_evaluator
from autospace_nni.cells import count_by_hooks
from autospace_nni.search import evaluate_accuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))


def build_space(name: str):
    """Your model space, unchanged. Returns it and the data it takes."""
    data = load_dataset('digits', seed=0)   # sklearn's bundled digits: 8x8 grey images, 10 classes
    if name == 'hello':
        from hello_nas_space import HelloNasSpace
        return HelloNasSpace(in_channels=1, num_classes=10), data
    if name == 'proxylessnas':
        from nni.nas.hub.pytorch import ProxylessNAS
        import dataclasses
        rgb = lambda ds: TensorDataset(ds.tensors[0].repeat(1, 3, 1, 1), ds.tensors[1])  # noqa: E731
        data = dataclasses.replace(data, train=rgb(data.train), val=rgb(data.val), test=rgb(data.test),
                                   input_shape=(3, 8, 8))
        return ProxylessNAS(num_labels=10, width_mult=0.25), data
    raise SystemExit(f'unknown space {name!r}: hello or proxylessnas')


def train(model: nn.Module, data, epochs: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    loader = DataLoader(data.train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=4e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        sched.step()
    return evaluate_accuracy(model, data.test)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--space', default='hello', choices=['hello', 'proxylessnas'])
    p.add_argument('--iterations', type=int, default=12, help='AutoSpace iterations (supernet epochs)')
    p.add_argument('--search-epochs', type=int, default=4, help='DARTS epochs on the learned space')
    p.add_argument('--train-epochs', type=int, default=10, help='training epochs of the final network')
    p.add_argument('--out', default='runs/drop_in', help='where the learned space and the result go')
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    space, data = build_space(args.space)
    strategy = AutoSpace(population_size=16, sample_k=3, top_m=4, iterations=args.iterations, seed=0)
    exp = NasExperiment(space, make_evaluator(data, max_epochs=args.iterations), strategy)  # the only change
    exp.config.experiment_working_directory = str(out / 'nni-experiments')
    exp.run()
    exp.stop()

    learned = strategy.learned_space()
    print(learned.layout.format_table(), '\n')
    print(learned.format_table(), '\n')
    learned.save(out / 'learned_space.json')   # reload: LearnedSpace.load(path).model_space(base=YourSpace())
    better = learned.model_space()              # your space class, learned candidates, same labels

    # any NNI strategy on it; one-shot strategies turn their space into a supernet in place, so give a copy
    exp = NasExperiment(copy.deepcopy(better), make_evaluator(data, max_epochs=args.search_epochs), DARTS())
    exp.config.experiment_working_directory = str(out / 'nni-experiments')
    exp.run()
    arch = exp.export_top_models(formatter='dict')[0]
    exp.stop()

    model = better.freeze(arch)
    madds, params = count_by_hooks(model, data.input_shape)   # counted on the network itself
    accuracy = train(model, data, args.train_epochs)
    result = {'space': type(space).__name__, 'architecture': arch, 'test_accuracy': accuracy,
              'madds': madds, 'params': params}
    (out / 'result.json').write_text(json.dumps(result, indent=1, default=str) + '\n')
    print(json.dumps(result, indent=1, default=str))
    return result


if __name__ == '__main__':
    main()
