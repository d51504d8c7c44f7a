"""The ``autospace-nni`` command.

Every user-facing error is one line on stderr (``autospace-nni: error: ...``) with exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from . import interrupts
from .cli_parser import UsageError, apply_config_file, build_parser, evolve_config, usage_error

__all__ = ['main', 'COMMANDS']


def _quiet_nni_warnings() -> None:
    from .pipeline import ignore_known_warnings
    ignore_known_warnings()
    os.environ.setdefault('PYTHONWARNINGS', 'ignore::UserWarning:pkg_resources')
    os.environ['AUTOSPACE_QUIET'] = '1'


def _cmd_cost(args) -> int:
    from .presets import network_architecture, PAPER_FIGURES
    from .space import Architecture, Skeleton, reference_cell
    given = [x for x in (args.preset, args.skeleton, args.arch) if x]
    if len(given) != 1:
        raise usage_error('cost needs exactly one of --preset, --skeleton or --arch')
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
              f'(off by {100 * (cost.madds / ref["madds"] - 1):+.2f}% and {100 * (cost.params / ref["params"] - 1):+.2f}%)')
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


def _cmd_evolve(args) -> int:
    from .errors import Interrupted
    from .pipeline import load_run_config, run_evolve
    if args.resume:
        if args.overwrite:
            raise usage_error('--resume and --overwrite contradict each other: --resume continues the run in the folder, '
                          '--overwrite replaces it')
        out = args.resume if args.out is None else args.out
        cfg = load_run_config(out)
        kw = dict(resume=True)
    else:
        if args.out is None:
            raise usage_error('evolve needs --out (or --resume RUN_DIR)')
        out, cfg, kw = args.out, evolve_config(args), dict(overwrite=args.overwrite)
    try:
        learned, strategy = run_evolve(cfg, out, progress=not args.no_progress, **kw)
    except Interrupted as e:
        print(f'interrupted at iteration {e.iteration}; resume with `autospace-nni evolve --resume {out}`',
              file=sys.stderr)
        return interrupts.exit_status()
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


#: the file `train` saves its state in after every epoch, inside --out
TRAIN_CHECKPOINT = 'retrain.ckpt'


def _check_out(out, overwrite: bool, marker: str, *, create: bool = True):
    out = Path(out)
    if (out / marker).exists() and not overwrite:
        raise usage_error(f'{out} already holds {marker}; pass --overwrite to replace it or choose another --out')
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_search(args) -> int:
    from .data import load_dataset
    from .pipeline import quiet_libraries, _write_json
    from .search import load_search_space, run_search
    if os.environ.get('AUTOSPACE_QUIET'):
        quiet_libraries()
    learned = load_search_space(args.space, args.skeleton)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(learned.skeleton.input_shape):
        raise usage_error(f'dataset {args.dataset} has input {data.input_shape}, the space expects '
                     f'{learned.skeleton.input_shape}')
    out = _check_out(args.out, args.overwrite, 'arch.json', create=False)   # run_search makes it
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
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise usage_error('--device cuda was given but no CUDA device is available; use --device cpu')
    arch = Architecture.load(args.arch)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(arch.skeleton.input_shape):
        raise usage_error(f'dataset {args.dataset} has input {data.input_shape}, the architecture expects '
                     f'{arch.skeleton.input_shape}')
    arch.check_build()
    out = _check_out(args.out, args.overwrite, 'metrics.json')
    ckpt = out / TRAIN_CHECKPOINT      # saved every epoch: a killed or interrupted train continues from it
    if args.overwrite and ckpt.exists():
        ckpt.unlink()
    if ckpt.exists():
        print(f'continuing the unfinished training in {out} from {ckpt.name}', file=sys.stderr)
    m = retrain(arch, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                label_smoothing=args.label_smoothing, weight_decay=args.weight_decay, augment=args.augment,
                flip=args.flip, erase=args.erase, seed=args.seed, device=args.device,
                out_dir=out, progress=not args.no_progress, checkpoint=ckpt)
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
            raise usage_error('--with-manual needs a learned space to pair with the manual one')
        manual = manual_space(space.skeleton).to_nni_search_space()
        doc = {'space': {'_type': 'choice', '_value': [dict(_name='learned', **doc), dict(_name='manual', **manual)]}}
    print(json.dumps(doc, indent=1))
    return 0


def _cmd_sample_space(args) -> int:
    from .data import load_dataset
    from .design_space import sample_space
    from .search import load_search_space
    if args.madds_range and args.madds_range[0] > args.madds_range[1]:
        raise usage_error(f'--madds-range LO HI needs LO <= HI, got {args.madds_range}')
    space = load_search_space(args.space, args.skeleton)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    if tuple(data.input_shape) != tuple(space.skeleton.input_shape):
        raise usage_error(f'dataset {args.dataset} has input {data.input_shape}, the space expects '
                     f'{space.skeleton.input_shape}')
    name = args.name or ('manual' if args.space == 'manual' else 'learned')
    recs = sample_space(space, data, args.out, n=args.n, epochs=args.epochs, seed=args.seed,
                        batch_size=args.batch_size, lr=args.lr, madds_range=args.madds_range, name=name,
                        progress=not args.no_progress, device=args.device, train_seed=args.train_seed)
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
    target, sep, name = ref.rpartition(':')
    if not sep or not target or not name:
        raise usage_error(f'{ref!r}: name a space as path/to/file.py:Class or package.module:Class')
    if target.endswith('.py'):
        path = Path(target)
        if not path.is_file():
            raise usage_error(f'{target} does not exist')
        sys.path.insert(0, str(path.resolve().parent))   # so the file's own imports of its neighbours work
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        with _user_code(f'importing {target}'):
            spec.loader.exec_module(module)
    else:
        with _user_code(f'importing {target}'):
            module = importlib.import_module(target)
    if not hasattr(module, name):
        raise usage_error(f'{target} has no {name!r}')
    return getattr(module, name)


class _user_code:
    """Runs a user's code (importing their module, building their space): whatever it raises, or a
    ``SystemExit`` it calls, becomes one line that names what was being done."""

    def __init__(self, doing: str):
        self.doing = doing

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is None or kind is KeyboardInterrupt:
            return False
        if kind is SystemExit:
            raise usage_error(f'{self.doing}: it called sys.exit({error.code!r})') from None
        where = ''
        frames = [f for f in traceback.extract_tb(tb) if 'autospace_nni' not in f.filename
                  and 'importlib' not in f.filename]
        if frames:
            where = f' (at {Path(frames[-1].filename).name}:{frames[-1].lineno})'
        raise usage_error(f'{self.doing} failed{where}: {kind.__name__}: {error}') from None


def _cmd_adopt(args) -> int:
    from nni.nas.nn.pytorch import ModelSpace
    from .space.adopted import adopt
    cls = _load_space_class(args.space)
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        raise usage_error(f'--kwargs must be a JSON object: {e}') from None
    if not isinstance(kwargs, dict):
        raise usage_error('--kwargs must be a JSON object, e.g. \'{"num_labels": 10}\'')
    if not (isinstance(cls, type) and issubclass(cls, ModelSpace)):
        raise usage_error(f'{args.space} is not an NNI ModelSpace class')
    with _user_code(f'{args.space}(**{kwargs})'):
        space = cls(**kwargs)
    try:
        adopted = adopt(space, tuple(args.input_shape))
    except ValueError as e:
        raise usage_error('; '.join(line.strip() for line in str(e).splitlines())) from None
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


#: sub-command → the function that runs it (its flags: autospace_nni.cli_parser.build_parser)
COMMANDS = {'cost': _cmd_cost, 'data': _cmd_data, 'evolve': _cmd_evolve, 'demo': _cmd_demo, 'search': _cmd_search,
            'train': _cmd_train, 'export-nni-space': _cmd_export_nni_space, 'sample-space': _cmd_sample_space,
            'compare': _cmd_compare, 'adopt': _cmd_adopt, 'report': _cmd_report}


def main(argv=None) -> int:
    from .errors import AutoSpaceError
    argv = sys.argv[1:] if argv is None else list(argv)
    if '--debug' not in argv:
        _quiet_nni_warnings()
    parser = build_parser()
    debug = '--debug' in argv
    args = None
    try:
        args = apply_config_file(parser, argv)
        with interrupts.watching():
            return COMMANDS[args.command](args) or 0
    except (AutoSpaceError, UsageError) as e:
        if debug:
            raise
        print(f'autospace-nni: error: {e}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as e:
        # Lightning answers Ctrl-C with sys.exit(1): an exit after Ctrl-C or SIGTERM is the interruption
        if isinstance(e, SystemExit) and not interrupts.requested():
            raise
        return interrupts.stopped('autospace-nni', _resume_hint(args))


def _resume_hint(args) -> str:
    """How to go on after Ctrl-C or SIGTERM, by command."""
    command = getattr(args, 'command', None)
    if command == 'sample-space':
        from .design_space import RESULTS
        path = Path(args.out) / RESULTS
        done = len(path.read_text().splitlines()) if path.exists() else 0
        return (f'{done} of {args.n} networks are kept in {path}; the same command resumes from them')
    if command in ('evolve', 'demo') and getattr(args, 'out', None):
        return f'resume with `autospace-nni evolve --resume {args.resume or args.out}`'
    if command == 'train' and getattr(args, 'out', None):
        return (f'the finished epochs are kept in {Path(args.out) / TRAIN_CHECKPOINT}; the same command continues '
                'from them')
    if command == 'search':
        return 'search keeps nothing unfinished: run the same command again'
    return 'nothing was written'


if __name__ == '__main__':
    sys.exit(main())
