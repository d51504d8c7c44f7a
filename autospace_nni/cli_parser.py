"""The command line's grammar: every sub-command's flags (:func:`build_parser`), the ``evolve`` flags as an
:class:`~autospace_nni.pipeline.EvolveConfig` (:func:`evolve_config`), and YAML config files whose keys become
the flags' defaults (:func:`apply_config_file`; NNI trial parameters use the same names, :func:`option_dest`).
Building the parser imports neither NNI nor torch; :mod:`autospace_nni.cli` runs the commands.
"""

from __future__ import annotations

import argparse

from .config import integer, number, ranged

__all__ = ['build_parser', 'apply_config_file', 'evolve_config', 'add_evolve_args', 'option_dest', 'typed',
           'UsageError', 'STRATEGIES']


#: mirrors autospace_nni.search.STRATEGIES (kept here so that building the parser does not import NNI)
STRATEGIES = ('darts', 'gumbel', 'proxyless', 'spos', 'evolution', 'random')


#: the flags' value types: each checks its range, so a bad value is a one-line error naming the flag
COUNT, SEED, PORT = ranged(int, integer(1)), ranged(int, integer(0)), ranged(int, integer(1, 65535))
POSITIVE, NONNEG = ranged(float, number(0, low_open=True)), ranged(float, number(0))
FRACTION, SMOOTHING = ranged(float, number(0, 1, low_open=True)), ranged(float, number(0, 1, high_open=True))


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (:class:`UsageError`) instead of usage text and ``exit(2)``."""

    def error(self, message):
        raise UsageError(f'{message} (see {self.prog} --help)')


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--dataset', default='digits', help='digits (default, bundled) | fashion-mnist | cifar10')
    p.add_argument('--data-dir', default=None, help='folder with the dataset files (fashion-mnist, cifar10)')


def add_evolve_args(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    from .config import add_arguments
    add_data_args(p)
    p.add_argument('--skeleton', default='tiny-8', help='skeleton preset (tiny-8 for digits, mobile-28 for fashion-mnist)')
    p.add_argument('--fit-input', action='store_true',
                   help="take the skeleton's input shape and classes from the dataset (e.g. --skeleton "
                        "efficientnet-b0 --reference efficientnet-b0 on digits)")
    p.add_argument('--grouping', default='stage', choices=['stage', 'layer'],
                   help="layer groups: per (stage, first/rest) as in the paper's released space, or per block")
    p.add_argument('--out', default='runs/demo' if demo else None, help='run folder')
    p.add_argument('--config', default=None, metavar='FILE.yml',
                   help='options from a YAML file (keys as the long options, e.g. sample_k: 4); flags given '
                        'on the command line win')
    p.add_argument('--resume', default=None, metavar='RUN_DIR',
                   help='continue the run in RUN_DIR from its last complete checkpoint (same options)')
    p.add_argument('--overwrite', action='store_true', help='replace a run already in --out')
    p.add_argument('--lr', type=POSITIVE, default=0.05, help='SGD learning rate of the weights (cosine schedule)')
    p.add_argument('--batch-size', type=COUNT, default=None, help="(default: the skeleton preset's)")
    p.add_argument('--limit', type=COUNT, default=None, help='cap the train split (quick runs)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--devices', type=COUNT, default=1,
                   help='processes (CPU) or GPUs for Lightning DDP; >1 trains the supernet data-parallel')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bar')
    # every AutoSpace option, from autospace_nni/config.py; where not given: the skeleton preset, then
    # pipeline.RUN_DEFAULTS, then the strategy's default
    add_arguments(p, skip=('input_shape',))


def evolve_config(args):
    from .config import AutoSpaceConfig, given
    from .errors import OptionError
    from .pipeline import EvolveConfig, PRESETS, RUN_DEFAULTS
    if args.devices < 1:
        raise usage_error(f'--devices must be >= 1, got {args.devices}')
    for name in ('batch_size', 'limit'):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise usage_error(f'--{name.replace("_", "-")} must be >= 1, got {v}')
    options = given(args)
    budget = options.get('budget_madds')
    if budget is None:
        for flag, name in (('--budget-penalty', 'budget_penalty'), ('--no-hard-filter', 'hard_filter')):
            if name in options and options[name] != getattr(AutoSpaceConfig(), name):
                raise usage_error(f'{flag} only applies with --budget-madds; give a budget or drop {flag}')
    preset = dict(PRESETS.get(args.skeleton, {}))
    preset_batch = preset.pop('batch_size', EvolveConfig.batch_size)
    batch_size = args.batch_size if args.batch_size is not None else preset_batch
    try:
        return EvolveConfig(dataset=args.dataset, data_dir=args.data_dir, skeleton=args.skeleton,
                            grouping=args.grouping, lr=args.lr, batch_size=batch_size, limit=args.limit,
                            device=args.device, devices=args.devices, fit_input=args.fit_input,
                            options={**RUN_DEFAULTS, **preset, **options})
    except OptionError as e:      # an option out of its range: one line, exit 2, named as its flag
        raise usage_error(f'--{e.option.replace("_", "-")}{str(e)[len(e.option):]}') from None


class UsageError(Exception):
    pass


def usage_error(msg: str) -> UsageError:
    """A one-line usage error (the CLI prints it and exits 2)."""
    return UsageError(msg)


#: mirror autospace_nni.presets.NETWORK_PRESETS and autospace_nni.space.skeleton.SKELETON_PRESETS (kept here so that
#: building the parser does not import torch; tests/test_published.py holds them equal)
NETWORK_NAMES = ('mobilenetv2', 'proxylessnas-mobile', 'efficientnet-b0', 'mnasnet-a1', 'mobilenetv3-large',
                 'mobilenetv3-small')
SKELETON_NAMES = ('proxylessnas-mobile', 'proxylessnas-mobile-released', 'mobilenetv2', 'efficientnet-b0',
                  'mnasnet-a1', 'mobilenetv3-large', 'mobilenetv3-small', 'mobile-28', 'tiny-8')


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog='autospace-nni', description='AutoSpace: learn NAS search spaces in NNI.')
    parser.add_argument('--debug', action='store_true', help='show tracebacks')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('cost', help='analytic MAdds and params of a network')
    p.add_argument('--preset', help='published network: ' + ' | '.join(NETWORK_NAMES))
    p.add_argument('--skeleton', help="a skeleton preset's reference network (MBConv k3 e6 in every block): "
                                      + ' | '.join(SKELETON_NAMES))
    p.add_argument('--arch', help='an arch.json file')
    p.add_argument('--json', action='store_true', help='print {"madds": ..., "params": ...}')
    p.add_argument('--per-block', action='store_true', help='also list each block')

    p = sub.add_parser('data', help='load a dataset and print its splits')
    add_data_args(p)
    p.add_argument('--seed', type=SEED, default=0)

    p = sub.add_parser('evolve', help='evolve a learned space (AutoSpace)')
    add_evolve_args(p)

    p = sub.add_parser('demo', help='the README main job: evolve a learned space on digits and show it')
    add_evolve_args(p, demo=True)
    p.set_defaults(overwrite=True)

    p = sub.add_parser('search', help='run an NNI NAS strategy on a learned or the manual space')
    add_data_args(p)
    p.add_argument('--space', required=True, help='learned_space.json, or "manual" (MBConv k3/5/7 x e3/6 + zero)')
    p.add_argument('--skeleton', default=None, help='skeleton preset (required for --space manual)')
    p.add_argument('--strategy', required=True, choices=STRATEGIES)
    p.add_argument('--budget-madds', type=POSITIVE, default=None)
    p.add_argument('--budget-floor', type=FRACTION, default=0.9,
                   help='the found network must cost at least this fraction of the budget (1 = exactly; the budget '
                        "is capped at the space's priciest network)")
    p.add_argument('--epochs', type=COUNT, default=4, help='supernet epochs (one-shot strategies)')
    p.add_argument('--trials', type=COUNT, default=8, help='architectures tried (spos stage 2, evolution, random)')
    p.add_argument('--trial-epochs', type=COUNT, default=1, help='training epochs per multi-trial trial')
    p.add_argument('--concurrency', type=COUNT, default=1, help='trialConcurrency of multi-trial strategies')
    p.add_argument('--port', type=PORT, default=8745, help='NNI manager port of multi-trial strategies')
    p.add_argument('--batch-size', type=COUNT, default=64)
    p.add_argument('--lr', type=POSITIVE, default=0.05)
    p.add_argument('--seed', type=SEED, default=0)
    p.add_argument('--limit', type=COUNT, default=None, help='cap the train split (quick runs)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True)
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bars')

    p = sub.add_parser('train', help='retrain an arch.json from scratch and export it')
    add_data_args(p)
    p.add_argument('--arch', required=True, help='arch.json from search (or any skeleton + sample file)')
    p.add_argument('--epochs', type=COUNT, default=10)
    p.add_argument('--batch-size', type=COUNT, default=64)
    p.add_argument('--lr', type=POSITIVE, default=0.05)
    p.add_argument('--label-smoothing', type=SMOOTHING, default=0.1)
    p.add_argument('--weight-decay', type=NONNEG, default=4e-5, help='SGD weight decay')
    p.add_argument('--augment', action='store_true', help='random translations of up to 2 pixels')
    p.add_argument('--flip', action='store_true', help='random horizontal flips')
    p.add_argument('--erase', action='store_true', help='random erasing (one rectangle in half the images)')
    p.add_argument('--seed', type=SEED, default=0)
    p.add_argument('--limit', type=COUNT, default=None)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True)
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bar')

    p = sub.add_parser('export-nni-space', help="print a space's NNI search_space.json (for nnictl experiments)")
    p.add_argument('space', help='learned_space.json, or "manual" with --skeleton')
    p.add_argument('--skeleton', default=None)
    p.add_argument('--with-manual', action='store_true',
                   help='a nested space {"space": learned | manual} for one experiment over both (compare_spaces.yml)')

    p = sub.add_parser('sample-space', help="train random architectures of a space briefly (RegNet's design-space check)")
    add_data_args(p)
    p.add_argument('space', help='learned_space.json, or "manual" with --skeleton')
    p.add_argument('--skeleton', default=None)
    p.add_argument('--n', type=COUNT, default=20, help='architectures to sample')
    p.add_argument('--epochs', type=COUNT, default=2)
    p.add_argument('--madds-range', type=NONNEG, nargs=2, default=None, metavar=('LO', 'HI'),
                   help='only architectures with MAdds in [LO, HI] (match it across the spaces you compare)')
    p.add_argument('--name', default=None, help='the space\'s name in plots (default: learned/manual)')
    p.add_argument('--batch-size', type=COUNT, default=64)
    p.add_argument('--lr', type=POSITIVE, default=0.05)
    p.add_argument('--seed', type=SEED, default=0, help='draws the architectures and (without --train-seed) '
                   'seeds their training')
    p.add_argument('--train-seed', type=SEED, default=None,
                   help='train the same architectures with seeds from this one: a second --out with another '
                        '--train-seed shows how much of an error is the training run\'s')
    p.add_argument('--limit', type=COUNT, default=None)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True, help='folder for design_space.jsonl (an unfinished one is resumed)')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true')

    p = sub.add_parser('compare', help='error EDFs of the spaces sampled with sample-space')
    p.add_argument('runs', nargs='+', help='sample-space --out folders')
    p.add_argument('--out', default='compare.png', help='the PNG to write (a .json summary is written beside it)')

    p = sub.add_parser('adopt', help='show which LayerChoices of your own NNI ModelSpace AutoSpace would evolve')
    p.add_argument('space', help='path/to/file.py:Class or package.module:Class (an NNI ModelSpace)')
    p.add_argument('--input-shape', type=COUNT, nargs=3, required=True, metavar=('C', 'H', 'W'),
                   help="one example's shape, for the dry forward pass")
    p.add_argument('--kwargs', default='{}', help='JSON object of arguments for the class, e.g. \'{"num_labels": 10}\'')

    p = sub.add_parser('report', help='write RUN_DIR/report.html with figures of an evolve run')
    p.add_argument('run_dir', help='the --out folder of evolve (search/train results inside it are included)')

    return parser


def option_dest(key) -> str:
    """The argparse destination of an option named ``key`` in a YAML file or an NNI trial's parameters (``-``
    or ``_``; the names of earlier versions too)."""
    from .config import OLD_NAMES
    dest = str(key).replace('-', '_')
    return OLD_NAMES.get(dest, dest)


def typed(kind, value):
    """``value`` (or each item of a list) converted with an argparse action's ``type``."""
    return [kind(v) for v in value] if isinstance(value, list) else kind(value)


def apply_config_file(parser: argparse.ArgumentParser, argv: list):
    """Parse ``argv``; where it names ``--config FILE.yml``, that file's keys become the defaults of the
    sub-command's options and ``argv`` is parsed again, so explicit flags override the file."""
    args = parser.parse_args(argv)
    path = getattr(args, 'config', None)
    if not path:
        return args
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise usage_error(f'config file {path} does not exist') from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e).splitlines()[0]
        raise usage_error(f'config file {path} is not valid YAML{where}: {problem}; fix the file') from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise usage_error(f'config file {path} must be a mapping of option: value, got a {type(doc).__name__}')
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    known = {a.dest: a for a in sub._actions if a.dest not in ('help', 'config', 'func')}
    values = {}
    for key, value in doc.items():
        dest = option_dest(key)
        if dest in values:
            raise usage_error(f'config file {path}: {dest} and {key} are the same option; give it once')
        if dest not in known:
            close = [k for k in known if k.startswith(dest[:4])][:3]
            raise usage_error(f'config file {path}: unknown option {key!r}' + (f' (did you mean {", ".join(close)}?)'
                                                                          if close else ''))
        action = known[dest]
        if value is not None and action.type is not None and not isinstance(value, bool):
            try:
                value = typed(action.type, value)
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                raise usage_error(f'config file {path}: {key} must be {action.type.__name__}, got {value!r}') from None
        elif isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)) and \
                not isinstance(value, bool):
            raise usage_error(f'config file {path}: {key} must be true or false, got {value!r}')
        if action.choices is not None and value not in action.choices:
            raise usage_error(f'config file {path}: {key} must be one of {", ".join(map(str, action.choices))}, '
                         f'got {value!r}')
        values[dest] = value
    sub.set_defaults(**values)
    return parser.parse_args(argv)
