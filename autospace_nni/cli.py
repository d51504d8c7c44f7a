"""The ``autospace-nni`` command.

Every user-facing error is one line on stderr (``autospace-nni: error: ...``) with exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ['main']


def _quiet_nni_warnings() -> None:
    from .pipeline import ignore_known_warnings
    ignore_known_warnings()
    os.environ.setdefault('PYTHONWARNINGS', 'ignore::UserWarning:pkg_resources')
    os.environ['AUTOSPACE_QUIET'] = '1'


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


def _add_evolve_args(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    from .config import add_arguments
    _add_data_args(p)
    p.add_argument('--skeleton', default='tiny-8', help='skeleton preset (tiny-8 for digits, mobile-28 for fashion-mnist)')
    p.add_argument('--grouping', default='stage', choices=['stage', 'layer'],
                   help="layer groups: per (stage, first/rest) as in the paper's released space, or per block")
    p.add_argument('--out', default='runs/demo' if demo else None, help='run folder')
    p.add_argument('--config', default=None, metavar='FILE.yml',
                   help='options from a YAML file (keys as the long options, e.g. sample_k: 4); flags given '
                        'on the command line win')
    p.add_argument('--resume', default=None, metavar='RUN_DIR',
                   help='continue the run in RUN_DIR from its last complete checkpoint (same options)')
    p.add_argument('--overwrite', action='store_true', help='replace a run already in --out')
    p.add_argument('--lr', type=float, default=0.05, help='SGD learning rate of the weights (cosine schedule)')
    p.add_argument('--batch-size', type=int, default=None, help="(default: the skeleton preset's)")
    p.add_argument('--limit', type=int, default=None, help='cap the train split (quick runs)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--devices', type=int, default=1,
                   help='processes (CPU) or GPUs for Lightning DDP; >1 trains the supernet data-parallel')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bar')
    # every AutoSpace option, from autospace_nni/config.py; where not given: the skeleton preset, then
    # pipeline.RUN_DEFAULTS, then the strategy's default
    add_arguments(p, skip=('input_shape',))


def _evolve_config(args):
    from .config import AutoSpaceConfig, given
    from .errors import OptionError
    from .pipeline import EvolveConfig, PRESETS, RUN_DEFAULTS
    if args.devices < 1:
        raise _usage(f'--devices must be >= 1, got {args.devices}')
    for name in ('batch_size', 'limit'):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise _usage(f'--{name.replace("_", "-")} must be >= 1, got {v}')
    options = given(args)
    budget = options.get('budget_madds')
    if budget is None:
        for flag, name in (('--budget-penalty', 'budget_penalty'), ('--no-hard-filter', 'hard_filter')):
            if name in options and options[name] != getattr(AutoSpaceConfig(), name):
                raise _usage(f'{flag} only applies with --budget-madds; give a budget or drop {flag}')
    preset = dict(PRESETS.get(args.skeleton, {}))
    preset_batch = preset.pop('batch_size', EvolveConfig.batch_size)
    batch_size = args.batch_size if args.batch_size is not None else preset_batch
    try:
        return EvolveConfig(dataset=args.dataset, data_dir=args.data_dir, skeleton=args.skeleton,
                            grouping=args.grouping, lr=args.lr, batch_size=batch_size, limit=args.limit,
                            device=args.device, devices=args.devices, options={**RUN_DEFAULTS, **preset, **options})
    except OptionError as e:      # an option out of its range: one line, exit 2, named as its flag
        raise _usage(f'--{e.option.replace("_", "-")}{str(e)[len(e.option):]}') from None


def _cmd_evolve(args) -> int:
    from .errors import Interrupted
    from .pipeline import load_run_config, run_evolve
    if args.resume:
        if args.overwrite:
            raise _usage('--resume and --overwrite contradict each other: --resume continues the run in the folder, '
                          '--overwrite replaces it')
        out = args.resume if args.out is None else args.out
        cfg = load_run_config(out)
        kw = dict(resume=True)
    else:
        if args.out is None:
            raise _usage('evolve needs --out (or --resume RUN_DIR)')
        out, cfg, kw = args.out, _evolve_config(args), dict(overwrite=args.overwrite)
    try:
        learned, strategy = run_evolve(cfg, out, progress=not args.no_progress, **kw)
    except Interrupted as e:
        print(f'interrupted at iteration {e.iteration}; resume with `autospace-nni evolve --resume {out}`',
              file=sys.stderr)
        return 130
    _print_learned(learned, strategy, out)
    return 0


def _print_learned(learned, strategy, out) -> None:
    prov = learned.provenance
    print(f'\nlearned space ({prov.get("iterations")} iterations, {prov.get("wall_time_s", 0):.1f} s, '
          f'{"converged" if prov.get("converged") else "stopped at T"}) -> {out}/learned_space.json')
    print(learned.format_table())
    if strategy.history:
        last = strategy.history[-1]
        print(f'supernet val acc {last["val_acc"]:.3f}, E[MAdds] {last["expected_madds"] / 1e6:.3f} M')


def _check_out(out, overwrite: bool, marker: str):
    from pathlib import Path
    out = Path(out)
    if (out / marker).exists() and not overwrite:
        raise _usage(f'{out} already holds {marker}; pass --overwrite to replace it or choose another --out')
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_search(args) -> int:
    from .data import load_dataset
    from .pipeline import quiet_libraries, _write_json
    from .search import load_search_space, run_search
    if args.trials < 1 or args.epochs < 1:
        raise _usage('--trials and --epochs must be >= 1')
    if args.concurrency < 1:
        raise _usage('--concurrency must be >= 1')
    if not 0 < args.budget_floor <= 1:
        raise _usage(f'--budget-floor must be in (0, 1], got {args.budget_floor}')
    if os.environ.get('AUTOSPACE_QUIET'):
        quiet_libraries()
    learned = load_search_space(args.space, args.skeleton)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(learned.skeleton.input_shape):
        raise _usage(f'dataset {args.dataset} has input {data.input_shape}, the space expects '
                     f'{learned.skeleton.input_shape}')
    out = _check_out(args.out, args.overwrite, 'arch.json')
    record = run_search(learned, args.strategy, data, budget_madds=args.budget_madds, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, trials=args.trials,
                        concurrency=args.concurrency, port=args.port, out_dir=out, dataset_name=args.dataset,
                        data_dir=args.data_dir, trial_epochs=args.trial_epochs, limit=args.limit, device=args.device,
                        progress=not args.no_progress, budget_floor=args.budget_floor)
    record['space_file'] = args.space
    record['dataset'] = args.dataset
    _write_json(out / 'arch.json', record)
    budget = f' (budget {args.budget_madds / 1e6:.3f} M)' if args.budget_madds else ''
    print(f'{args.strategy} on {args.space}: MAdds {record["madds"] / 1e6:.3f} M{budget}, params '
          f'{record["params"] / 1e6:.3f} M, search metric {record["search_metric"]}')
    for label, choice in record['sample'].items():
        print(f'  {label:8s} {choice}')
    print(f'-> {out}/arch.json')
    return 0


def _cmd_train(args) -> int:
    from .data import load_dataset
    from .retrain import retrain
    from .space.network import Architecture
    import torch
    if args.epochs < 1:
        raise _usage('--epochs must be >= 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise _usage('--device cuda was given but no CUDA device is available; use --device cpu')
    arch = Architecture.load(args.arch)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(arch.skeleton.input_shape):
        raise _usage(f'dataset {args.dataset} has input {data.input_shape}, the architecture expects '
                     f'{arch.skeleton.input_shape}')
    out = _check_out(args.out, args.overwrite, 'metrics.json')
    m = retrain(arch, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                label_smoothing=args.label_smoothing, augment=args.augment, seed=args.seed, device=args.device,
                out_dir=out, progress=not args.no_progress)
    print(f'test accuracy {m["test_acc"]:.4f}, MAdds {m["madds"] / 1e6:.3f} M, params {m["params"] / 1e6:.3f} M, '
          f'{m["epochs"]} epochs in {m["wall_time_s"]:.1f} s -> {out}/metrics.json')
    ex = m['exports']
    print('exports: model_state.pt + load_model.py, model.ts, '
          + ('model.onnx' + (f' (onnxruntime max |diff| {ex["onnx_max_abs_diff"]:.2e})'
                             if 'onnx_max_abs_diff' in ex else '') if 'onnx' in ex else f'no ONNX: {ex.get("onnx_error")}'))
    return 0


def _cmd_export_nni_space(args) -> int:
    from .search import load_search_space
    from .space.learned import manual_space
    space = load_search_space(args.space, args.skeleton)
    doc = space.to_nni_search_space()
    if args.with_manual:
        if args.space == 'manual':
            raise _usage('--with-manual needs a learned space to pair with the manual one')
        manual = manual_space(space.skeleton).to_nni_search_space()
        doc = {'space': {'_type': 'choice', '_value': [dict(_name='learned', **doc), dict(_name='manual', **manual)]}}
    print(json.dumps(doc, indent=1))
    return 0


def _cmd_sample_space(args) -> int:
    from .data import load_dataset
    from .design_space import sample_space
    from .search import load_search_space
    if args.n < 1 or args.epochs < 1:
        raise _usage('--n and --epochs must be >= 1')
    if args.madds_range and args.madds_range[0] > args.madds_range[1]:
        raise _usage(f'--madds-range LO HI needs LO <= HI, got {args.madds_range}')
    space = load_search_space(args.space, args.skeleton)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(space.skeleton.input_shape):
        raise _usage(f'dataset {args.dataset} has input {data.input_shape}, the space expects '
                     f'{space.skeleton.input_shape}')
    name = args.name or ('manual' if args.space == 'manual' else 'learned')
    recs = sample_space(space, data, args.out, n=args.n, epochs=args.epochs, seed=args.seed,
                        batch_size=args.batch_size, lr=args.lr, madds_range=args.madds_range, name=name,
                        progress=not args.no_progress, device=args.device)
    errs = [r['error'] for r in recs]
    print(f'{name}: {len(recs)} architectures, test error mean {sum(errs) / len(errs):.4f}, best {min(errs):.4f} '
          f'-> {args.out}/design_space.jsonl')
    return 0


def _cmd_compare(args) -> int:
    from .design_space import plot_edfs
    rows = plot_edfs(args.runs, args.out)
    from pathlib import Path
    Path(args.out).with_suffix('.json').write_text(json.dumps(rows, indent=1) + '\n')
    for r in rows:
        print(f'{r["space"]:12s} n={r["n"]:3d} mean error {r["mean_error"]:.4f} best {r["min_error"]:.4f} '
              f'MAdds {r["madds_min"] / 1e6:.3f}-{r["madds_max"] / 1e6:.3f} M')
    print(f'EDFs -> {args.out}')
    return 0


def _cmd_report(args) -> int:
    from .report import write_report
    path = write_report(args.run_dir)
    print(f'report -> {path}')
    return 0


def _load_space_class(ref: str):
    """``path/to/file.py:Class`` or ``package.module:Class``."""
    import importlib
    import importlib.util
    from pathlib import Path
    target, sep, name = ref.rpartition(':')
    if not sep or not target or not name:
        raise _usage(f'{ref!r}: name a space as path/to/file.py:Class or package.module:Class')
    if target.endswith('.py'):
        path = Path(target)
        if not path.is_file():
            raise _usage(f'{target} does not exist')
        sys.path.insert(0, str(path.resolve().parent))   # so the file's own imports of its neighbours work
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise _usage(f'cannot import {target}: {e}') from None
    if not hasattr(module, name):
        raise _usage(f'{target} has no {name!r}')
    return getattr(module, name)


def _cmd_adopt(args) -> int:
    from nni.nas.nn.pytorch import ModelSpace
    from .space.adopted import adopt
    cls = _load_space_class(args.space)
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        raise _usage(f'--kwargs must be a JSON object: {e}') from None
    if not isinstance(kwargs, dict):
        raise _usage('--kwargs must be a JSON object, e.g. \'{"num_labels": 10}\'')
    if not (isinstance(cls, type) and issubclass(cls, ModelSpace)):
        raise _usage(f'{args.space} is not an NNI ModelSpace class')
    try:
        space = cls(**kwargs)
    except TypeError as e:
        raise _usage(f'{args.space}(**{kwargs}): {e}') from None
    try:
        adopted = adopt(space, tuple(args.input_shape))
    except ValueError as e:
        raise _usage('; '.join(line.strip() for line in str(e).splitlines())) from None
    layout = adopted.layout
    print(layout.format_table())
    print()
    for spec in layout.blocks():
        for name, text in layout.user_candidates[spec.group].items():
            print(f'{spec.label:10s} {name:14s} {text}')
    print(f'\nrest of the network (as the evolution runs it): {layout.outside.madds / 1e6:.3f} M MAdds, '
          f'{layout.outside.params / 1e3:.1f} k params')
    return 0


def _cmd_demo(args) -> int:
    rc = _cmd_evolve(args)
    from .report import write_report
    print(f'report (open in a browser) -> {write_report(args.resume or args.out)}')
    return rc


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

    p = sub.add_parser('evolve', help='evolve a learned space (AutoSpace)')
    _add_evolve_args(p)
    p.set_defaults(func=_cmd_evolve)

    p = sub.add_parser('demo', help='the README main job: evolve a learned space on digits and show it')
    _add_evolve_args(p, demo=True)
    p.set_defaults(func=_cmd_demo, overwrite=True)

    p = sub.add_parser('search', help='run an NNI NAS strategy on a learned or the manual space')
    _add_data_args(p)
    p.add_argument('--space', required=True, help='learned_space.json, or "manual" (MBConv k3/5/7 x e3/6 + zero)')
    p.add_argument('--skeleton', default=None, help='skeleton preset (required for --space manual)')
    p.add_argument('--strategy', required=True, choices=STRATEGIES)
    p.add_argument('--budget-madds', type=float, default=None)
    p.add_argument('--budget-floor', type=float, default=0.9,
                   help='the found network must cost at least this fraction of the budget (1 = exactly; the budget '
                        "is capped at the space's priciest network)")
    p.add_argument('--epochs', type=int, default=4, help='supernet epochs (one-shot strategies)')
    p.add_argument('--trials', type=int, default=8, help='architectures tried (spos stage 2, evolution, random)')
    p.add_argument('--trial-epochs', type=int, default=1, help='training epochs per multi-trial trial')
    p.add_argument('--concurrency', type=int, default=1, help='trialConcurrency of multi-trial strategies')
    p.add_argument('--port', type=int, default=8745, help='NNI manager port of multi-trial strategies')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--limit', type=int, default=None, help='cap the train split (quick runs)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True)
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bars')
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser('train', help='retrain an arch.json from scratch and export it')
    _add_data_args(p)
    p.add_argument('--arch', required=True, help='arch.json from search (or any skeleton + sample file)')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--label-smoothing', type=float, default=0.1)
    p.add_argument('--augment', action='store_true', help='random translations of up to 2 pixels')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--limit', type=int, default=None)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True)
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true', help='no progress bar')
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser('export-nni-space', help="print a space's NNI search_space.json (for nnictl experiments)")
    p.add_argument('space', help='learned_space.json, or "manual" with --skeleton')
    p.add_argument('--skeleton', default=None)
    p.add_argument('--with-manual', action='store_true',
                   help='a nested space {"space": learned | manual} for one experiment over both (compare_spaces.yml)')
    p.set_defaults(func=_cmd_export_nni_space)

    p = sub.add_parser('sample-space', help="train random architectures of a space briefly (RegNet's design-space check)")
    _add_data_args(p)
    p.add_argument('space', help='learned_space.json, or "manual" with --skeleton')
    p.add_argument('--skeleton', default=None)
    p.add_argument('--n', type=int, default=20, help='architectures to sample')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--madds-range', type=float, nargs=2, default=None, metavar=('LO', 'HI'),
                   help='only architectures with MAdds in [LO, HI] (match it across the spaces you compare)')
    p.add_argument('--name', default=None, help='the space\'s name in plots (default: learned/manual)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--limit', type=int, default=None)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True, help='folder for design_space.jsonl (an unfinished one is resumed)')
    p.add_argument('--quiet', '--no-progress', dest='no_progress', action='store_true')
    p.set_defaults(func=_cmd_sample_space)

    p = sub.add_parser('compare', help='error EDFs of the spaces sampled with sample-space')
    p.add_argument('runs', nargs='+', help='sample-space --out folders')
    p.add_argument('--out', default='compare.png', help='the PNG to write (a .json summary is written beside it)')
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser('adopt', help='show which LayerChoices of your own NNI ModelSpace AutoSpace would evolve')
    p.add_argument('space', help='path/to/file.py:Class or package.module:Class (an NNI ModelSpace)')
    p.add_argument('--input-shape', type=int, nargs=3, required=True, metavar=('C', 'H', 'W'),
                   help="one example's shape, for the dry forward pass")
    p.add_argument('--kwargs', default='{}', help='JSON object of arguments for the class, e.g. \'{"num_labels": 10}\'')
    p.set_defaults(func=_cmd_adopt)

    p = sub.add_parser('report', help='write RUN_DIR/report.html with figures of an evolve run')
    p.add_argument('run_dir', help='the --out folder of evolve (search/train results inside it are included)')
    p.set_defaults(func=_cmd_report)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


#: mirrors autospace_nni.search.STRATEGIES (kept here so that building the parser does not import NNI)
STRATEGIES = ('darts', 'gumbel', 'proxyless', 'spos', 'evolution', 'random')

#: later modules append ``register(subparsers)`` callables here
_EXTRA_COMMANDS: list = []


def option_dest(key) -> str:
    """The argparse destination of an option named ``key`` in a YAML file or an NNI trial's parameters (``-``
    or ``_``; the names of earlier versions too)."""
    from .config import OLD_NAMES
    dest = str(key).replace('-', '_')
    return OLD_NAMES.get(dest, dest)


def typed(kind, value):
    """``value`` (or each item of a list) converted with an argparse action's ``type``."""
    return [kind(v) for v in value] if isinstance(value, list) else kind(value)


def _apply_config_file(parser: argparse.ArgumentParser, argv: list):
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
        raise _usage(f'config file {path} does not exist') from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e).splitlines()[0]
        raise _usage(f'config file {path} is not valid YAML{where}: {problem}; fix the file') from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _usage(f'config file {path} must be a mapping of option: value, got a {type(doc).__name__}')
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    known = {a.dest: a for a in sub._actions if a.dest not in ('help', 'config', 'func')}
    values = {}
    for key, value in doc.items():
        dest = option_dest(key)
        if dest in values:
            raise _usage(f'config file {path}: {dest} and {key} are the same option; give it once')
        if dest not in known:
            close = [k for k in known if k.startswith(dest[:4])][:3]
            raise _usage(f'config file {path}: unknown option {key!r}' + (f' (did you mean {", ".join(close)}?)'
                                                                          if close else ''))
        action = known[dest]
        if value is not None and action.type is not None and not isinstance(value, bool):
            try:
                value = typed(action.type, value)
            except (TypeError, ValueError):
                raise _usage(f'config file {path}: {key} must be {action.type.__name__}, got {value!r}') from None
        elif isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)) and \
                not isinstance(value, bool):
            raise _usage(f'config file {path}: {key} must be true or false, got {value!r}')
        if action.choices is not None and value not in action.choices:
            raise _usage(f'config file {path}: {key} must be one of {", ".join(map(str, action.choices))}, '
                         f'got {value!r}')
        values[dest] = value
    sub.set_defaults(**values)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from .errors import AutoSpaceError
    argv = sys.argv[1:] if argv is None else list(argv)
    if '--debug' not in argv:
        _quiet_nni_warnings()
    parser = build_parser()
    debug = '--debug' in argv
    try:
        args = _apply_config_file(parser, argv)
        return args.func(args) or 0
    except (AutoSpaceError, _UsageError) as e:
        if debug:
            raise
        print(f'autospace-nni: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('autospace-nni: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
