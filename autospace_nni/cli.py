"""The ``autospace-nni`` command.

Every user-facing error is one line on stderr (``autospace-nni: error: ...``) with exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

__all__ = ['main']


def _quiet_nni_warnings() -> None:
    # Known-harmless noise from NNI 3.0 on torch 2.14 / setuptools 80 / Lightning 2.6 (NNI-NOTES 1.3).
    # Filtered in the CLI only, never in the tests.
    for pattern in [r'.*is found to be not a nn\.Module.*', r'.*pkg_resources is deprecated.*',
                    r'.*training_service will be ignored.*', r'.*last_model_path.*', r'.*LeafSpec.*',
                    r'.*Validation dataloaders are missing.*', r'.*log_every_n_steps.*', r'.*litlogger.*',
                    r'.*does not have many workers.*', r'.*found in sys.modules.*']:
        warnings.filterwarnings('ignore', message=pattern)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore::UserWarning:pkg_resources')


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--dataset', default='digits', help='digits (default, bundled) | fashion-mnist | cifar10')
    p.add_argument('--data-dir', default=None, help='folder with the dataset files (fashion-mnist, cifar10)')


def _cmd_cost(args) -> int:
    from .presets import network_architecture, PAPER_FIGURES
    from .space import Architecture, Skeleton, reference_cell
    given = [x for x in (args.preset, args.skeleton, args.arch) if x]
    if len(given) != 1:
        raise _usage('cost needs exactly one of --preset, --skeleton or --arch')
    if args.preset:
        arch = network_architecture(args.preset)
        what = f'network {args.preset}'
    elif args.skeleton:
        sk = Skeleton.preset(args.skeleton)
        arch = Architecture.uniform(sk, reference_cell(sk))
        what = f'reference network of skeleton {args.skeleton} ({reference_cell(sk)} in every block)'
    else:
        arch = Architecture.load(args.arch)
        what = f'architecture {args.arch}'
    cost = arch.cost()
    result = {'madds': cost.madds, 'params': cost.params}
    if args.json:
        print(json.dumps(result))
        return 0
    sk = arch.skeleton
    print(f'{what}')
    print(f'  skeleton {sk.name}: input {"x".join(map(str, sk.input_shape))}, {sk.num_classes} classes')
    print(f'  MAdds  {cost.madds / 1e6:10.2f} M   (conv + linear multiply-accumulates)')
    print(f'  params {cost.params / 1e6:10.3f} M')
    if args.preset in PAPER_FIGURES:
        ref = PAPER_FIGURES[args.preset]
        print(f'  paper  {ref["madds"] / 1e6:10.0f} M MAdds, {ref["params"] / 1e6:.1f} M params '
              f'(MAdds off by {100 * (cost.madds / ref["madds"] - 1):+.2f}%)')
    if args.per_block:
        from .space.network import choice_cost, fixed_cost
        print(f'  {"block":8s} {"cell":44s} {"MAdds":>10s} {"params":>9s}')
        for spec in sk.blocks():
            c = choice_cost(arch.choices[spec.label], spec)
            print(f'  {spec.label:8s} {str(arch.choices[spec.label]):44s} {c.madds:10d} {c.params:9d}')
        f = fixed_cost(sk)
        print(f'  {"fixed":8s} {"stem + first block + head":44s} {f.madds:10d} {f.params:9d}')
    return 0


def _cmd_data(args) -> int:
    from .data import load_dataset
    splits = load_dataset(args.dataset, args.data_dir, seed=args.seed)
    print(splits.summary())
    return 0


class _UsageError(Exception):
    pass


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='autospace-nni', description='AutoSpace: learn NAS search spaces in NNI.')
    parser.add_argument('--debug', action='store_true', help='show tracebacks')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('cost', help='analytic MAdds and params of a network')
    p.add_argument('--preset', help='published network: mobilenetv2 | proxylessnas-mobile')
    p.add_argument('--skeleton', help="a skeleton preset's reference network: proxylessnas-mobile | mobile-28 | tiny-8")
    p.add_argument('--arch', help='an arch.json file')
    p.add_argument('--json', action='store_true', help='print {"madds": ..., "params": ...}')
    p.add_argument('--per-block', action='store_true', help='also list each block')
    p.set_defaults(func=_cmd_cost)

    p = sub.add_parser('data', help='load a dataset and print its splits')
    _add_data_args(p)
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(func=_cmd_data)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


#: later modules append ``register(subparsers)`` callables here
_EXTRA_COMMANDS: list = []


def main(argv=None) -> int:
    from .errors import AutoSpaceError
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        _quiet_nni_warnings()
    try:
        return args.func(args) or 0
    except (AutoSpaceError, _UsageError) as e:
        if args.debug:
            raise
        print(f'autospace-nni: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('autospace-nni: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
