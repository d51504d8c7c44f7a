"""NNI trial entries, for experiments launched with ``nnictl create`` (see ``experiment_configs/``).

``nnictl create`` cannot launch a ``NasExperiment`` (its dispatcher needs a tuner; README, "nnictl and the NNI web UI"), so each trial here is a plain HPO trial:

* ``python -m autospace_nni.nni_trial evolve [evolve options]``: one AutoSpace evolution. The tuner's
  parameters (``budget_madds``, ``sample_k``, ``reference``, ``seed``, and any other evolve option) override
  the command-line options. Every iteration reports an intermediate result ``{'default': supernet val
  accuracy, 'fitness_max': ..., 'expected_madds': ...}``, so the web UI draws live curves; the final result
  carries the learned space's quality and the path of its ``learned_space.json``.
* ``python -m autospace_nni.nni_trial train --space learned_space.json|manual [train options]``: train one
  architecture (the tuner's parameters are ``{block label: candidate}``) and report accuracy, MAdds and the
  architecture itself. NNI 3.0 can pair a trial with the wrong parameters in its UI at concurrency > 1
  (#5726); our tables join on the ``arch`` inside the metric.

Outside NNI (no tuner) both run with the command-line options alone, which is how to debug a trial.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ['main']


def _output_dir() -> Path:
    # NNI gives every trial its own folder; outside NNI use the working directory
    return Path(os.environ.get('NNI_OUTPUT_DIR') or '.').resolve()


def _evolve(argv) -> int:
    import nni
    from .cli_parser import add_evolve_args, evolve_config, option_dest, typed
    from .pipeline import run_evolve

    parser = argparse.ArgumentParser(prog='autospace_nni.nni_trial evolve')
    add_evolve_args(parser)
    params = nni.get_next_parameter() or {}
    args = parser.parse_args(argv)
    actions = {a.dest: a for a in parser._actions}
    for key, value in params.items():
        dest = option_dest(key)
        if dest not in actions:
            raise SystemExit(f'nni_trial evolve: unknown parameter {key!r} from the search space; '
                             f'use evolve option names such as budget_madds, sample_k, reference, seed')
        kind = actions[dest].type
        if value is not None and kind is not None and not isinstance(value, bool):
            value = typed(kind, value)   # YAML may hand over 2.0e5 as text
        setattr(args, dest, value)
    cfg = evolve_config(args)
    out = Path(args.out) if args.out else _output_dir() / 'run'

    def report(strategy, record):
        metric = {'default': float(record['val_acc']), 'expected_madds': float(record['expected_madds']),
                  'fitness_max': max(float(v) for k, v in record.items() if k.startswith('fitness_max/')),
                  'fitness_mean': sum(float(v) for k, v in record.items() if k.startswith('fitness_mean/'))
                  / max(1, sum(1 for k in record if k.startswith('fitness_mean/'))),
                  'iteration': int(record['iteration'])}
        nni.report_intermediate_result(metric)

    learned, strategy = run_evolve(cfg, out, overwrite=True, progress=False, on_iteration=report)
    last = strategy.history[-1]
    top = [c.fitness for cells in learned.groups.values() for c in cells if not c.reference]
    nni.report_final_result({
        'default': float(last['val_acc']),
        'mean_top_fitness': float(sum(top) / len(top)),
        'expected_madds': float(last['expected_madds']),
        'iterations': int(strategy.iteration),
        'converged': bool(learned.provenance.get('converged')),
        'learned_space': str(out / 'learned_space.json'),
        'params': {k: v for k, v in params.items()},
    })
    print(f'learned space -> {out / "learned_space.json"}')
    return 0


def _train(argv) -> int:
    import nni
    from .data import load_dataset
    from .retrain import retrain
    from .search import load_search_space

    parser = argparse.ArgumentParser(prog='autospace_nni.nni_trial train')
    parser.add_argument('--space', required=True, help='learned_space.json or "manual"')
    parser.add_argument('--skeleton', default=None)
    parser.add_argument('--dataset', default='digits')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--limit', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tag', default=None, help='a name for the space in the results (e.g. learned, manual)')
    args = parser.parse_args(argv)
    space_file = args.space
    if space_file != 'manual' and not os.path.isabs(space_file) and not os.path.exists(space_file):
        # nnictl runs trials in the YAML's trialCodeDirectory; also look beside the package checkout
        here = Path(__file__).resolve().parent.parent / space_file
        space_file = str(here) if here.exists() else space_file
    params = dict(nni.get_next_parameter() or {})
    tag = None
    if isinstance(params.get('space'), dict):
        # compare_spaces: a nested choice {'space': {'_name': 'learned'|'manual', block: candidate, ...}}
        nested = dict(params.pop('space'))
        tag = nested.pop('_name')
        params = nested
        if tag == 'manual':
            skeleton = args.skeleton or load_search_space(space_file).skeleton.name
            space_file, args.skeleton = 'manual', skeleton
    learned = load_search_space(space_file, args.skeleton)
    sample = learned.best_sample()
    sample.update({k: v for k, v in params.items() if k in sample})
    arch = learned.architecture(sample)
    cost = arch.cost()
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)

    def report(epoch, acc):
        nni.report_intermediate_result({'default': float(acc), 'epoch': int(epoch)})

    m = retrain(arch, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                out_dir=None, progress=False, on_epoch=report)
    nni.report_final_result({'default': float(m['val_acc']), 'madds': int(cost.madds), 'params': int(cost.params),
                             'space': tag or args.tag or ('manual' if space_file == 'manual' else 'learned'),
                             'arch': json.dumps(sample, sort_keys=True)})
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in ('evolve', 'train'):
        print('usage: python -m autospace_nni.nni_trial evolve|train [options]', file=sys.stderr)
        return 2
    from .cli import _quiet_nni_warnings
    from .errors import AutoSpaceError
    _quiet_nni_warnings()
    try:
        return (_evolve if argv[0] == 'evolve' else _train)(argv[1:])
    except AutoSpaceError as e:   # one line in the trial's stderr, shown by the web UI's log view
        print(f'autospace-nni trial: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
