"""The evolve run behind ``autospace-nni evolve``: data → exploration space → AutoSpace → learned space,
with a run folder a person (and the report) can read:

    RUN_DIR/run.json             what was run (options, dataset, versions) and its status
    RUN_DIR/history.jsonl        one JSON record per iteration
    RUN_DIR/learned_space.json   the learned space (written atomically)
    RUN_DIR/tb/                  TensorBoard logs of the supernet (Lightning's logger)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from .config import AutoSpaceConfig, rename_old
from .errors import AutoSpaceError

__all__ = ['EvolveConfig', 'run_evolve', 'run_dir_lock', 'PRESETS', 'RUN_DEFAULTS', 'RunDirError']


class RunDirError(AutoSpaceError):
    """The output folder already holds a run."""


@dataclasses.dataclass
class EvolveConfig:
    """One ``evolve`` run: the data and the weights' training recipe, plus the AutoSpace options
    (:class:`~autospace_nni.config.AutoSpaceConfig`, by their names there) that the run sets. ``from_flat``
    builds one from a single flat mapping (a run.json of any version, a YAML file, keyword arguments)."""
    dataset: str = 'digits'
    data_dir: Optional[str] = None
    skeleton: str = 'tiny-8'
    grouping: str = 'stage'
    lr: float = 0.05
    batch_size: int = 64
    limit: Optional[int] = None
    device: str = 'cpu'
    devices: int = 1
    #: take the skeleton's input shape and class count from the dataset (an ImageNet skeleton such as
    #: efficientnet-b0 on digits: every block keeps its channels and strides, so its reference network fits)
    fit_input: bool = False
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.options = rename_old(dict(self.options))
        unknown = sorted(set(self.options) - set(AutoSpaceConfig.names()))
        if unknown:
            raise AutoSpaceError(f'unknown evolve options {", ".join(unknown)}; see autospace-nni evolve --help')
        self.config = AutoSpaceConfig(**self.options)     # every option checked, with its range, here

    @classmethod
    def from_flat(cls, **values) -> 'EvolveConfig':
        """Run fields by name, everything else an AutoSpace option (old names accepted), over
        :data:`RUN_DEFAULTS`."""
        run = {f.name for f in dataclasses.fields(cls)} - {'options'}
        options = {**RUN_DEFAULTS, **rename_old({k: v for k, v in values.items() if k not in run})}
        return cls(**{k: v for k, v in values.items() if k in run}, options=options)

    def __getattr__(self, name):      # the options read like fields: cfg.seed, cfg.iterations, ...
        if name in AutoSpaceConfig.names() and 'config' in self.__dict__:
            return getattr(self.__dict__['config'], name)
        raise AttributeError(name)

    def strategy_kwargs(self) -> dict:
        return dict(self.options)


#: what a run sets when neither the caller nor a skeleton preset does (the strategy's own defaults suit a
#: long run, these a quick one)
RUN_DEFAULTS = dict(iterations=12, seed=0, population_size=16, sample_k=3, tournament_size=4)

#: per-skeleton settings for the CLI, over RUN_DEFAULTS; the strategy itself keeps the method's defaults. On tiny
#: data an iteration is only a few α steps, so α's learning rate is raised to give a readable fitness signal.
#: ``arc_learning_rate`` matters only for the α estimators (``--fitness alpha-sum|alpha-gates``).
PRESETS = {
    'tiny-8': dict(arc_learning_rate=0.03, batch_size=32, iterations=12, population_size=16, sample_k=3,
                   tournament_size=4),
    'mobile-28': dict(arc_learning_rate=3e-3, batch_size=128, iterations=20, population_size=32, sample_k=4,
                      tournament_size=8),
    'proxylessnas-mobile': dict(arc_learning_rate=1e-3, batch_size=64, iterations=50, population_size=64, sample_k=4,
                                tournament_size=8),
}


#: known-harmless noise from NNI 3.0 on torch 2.14 / setuptools 80 / Lightning 2.6 (README, "Known NNI 3.0 issues"); filtered
#: by the command line and the long-running entry points, never in the tests
KNOWN_HARMLESS_WARNINGS = (
    r'.*is found to be not a nn\.Module.*', r'.*pkg_resources is deprecated.*', r'.*training_service will be ignored.*',
    r'.*last_model_path.*', r'.*LeafSpec.*', r'.*Validation dataloaders are missing.*', r'.*log_every_n_steps.*',
    r'.*litlogger.*', r'.*does not have many workers.*', r'.*found in sys.modules.*')


def ignore_known_warnings() -> None:
    import warnings
    for pattern in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=pattern)


def quiet_libraries() -> None:
    """Silence Lightning's and NNI's chatter (set after they are imported: both set levels at import)."""
    import logging
    import warnings
    ignore_known_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # NNI warns once, at import, about torch 2.14's new modules
        import pytorch_lightning  # noqa: F401
        import nni.nas.nn.pytorch  # noqa: F401
        import nni.nas.oneshot.pytorch  # noqa: F401
    for name in ('pytorch_lightning', 'lightning', 'lightning.pytorch', 'lightning_fabric',
                 'pytorch_lightning.utilities.rank_zero', 'pytorch_lightning.accelerators.cuda'):
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name == 'nni' or name.startswith('nni.'):
            logging.getLogger(name).setLevel(logging.ERROR)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=1, default=str) + '\n')


@contextlib.contextmanager
def run_dir_lock(out: Path):
    """Hold ``out/.lock`` for a whole run: a second ``evolve`` on the folder (``--out``, ``--resume`` or
    ``--overwrite``) is refused in one line naming the process that holds it. The lock is an OS file lock
    (``filelock``), so a killed process leaves none behind and a resume after a crash is never blocked."""
    from filelock import FileLock, Timeout
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock, owner = FileLock(str(out / '.lock')), out / '.lock.owner'
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text().strip() if owner.exists() else 'another process'
        raise RunDirError(f'{out} is in use by {holder}; wait for it to finish or stop it, or choose another '
                          f'--out') from None
    try:
        owner.write_text(f'process {os.getpid()}\n')
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def prepare_run_dir(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RunDirError(f'{out} exists and is not a folder; choose another --out')
    if out.is_dir() and any((out / n).exists() for n in ('run.json', 'learned_space.json', 'history.jsonl')):
        if not overwrite:
            raise RunDirError(f'{out} already holds a run; pass --overwrite to replace it or choose another --out')
        import shutil
        for n in ('run.json', 'learned_space.json', 'history.jsonl'):
            if (out / n).exists():
                (out / n).unlink()
        if (out / 'checkpoints').is_dir():
            shutil.rmtree(out / 'checkpoints')
    out.mkdir(parents=True, exist_ok=True)


def _untrained(checkpoint: dict) -> bool:
    """A checkpoint written when training started (the iteration-0 boundary), before any step or rollback."""
    evolution = checkpoint.get('autospace', {}).get('evolution', {})
    return checkpoint.get('global_step') == 0 and evolution.get('iteration') == 0 and not evolution.get('rollbacks')


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def load_run_config(out) -> EvolveConfig:
    out = Path(out)
    try:
        run = json.loads((out / 'run.json').read_text())
    except FileNotFoundError:
        raise RunDirError(f'{out} holds no run to resume (no run.json); start one with evolve --out') from None
    except json.JSONDecodeError as e:
        raise RunDirError(f'{out}/run.json is corrupt ({e}); start a new run with --overwrite') from None
    config = dict(run['config'])
    if 'path_mode' in config:   # runs of package versions before the fitness option
        config['fitness'] = {'sum': 'alpha-sum', 'sample': 'alpha-gates'}[config.pop('path_mode')]
    if 'options' in config:
        return EvolveConfig(**config)
    return EvolveConfig.from_flat(**config)    # a run.json of a version with one flat config (old names)


def _truncate_history(path: Path, iterations_done: int) -> None:
    """Drop the records of iterations that a resume or rollback will redo."""
    if path.exists():
        keep = [l for l in path.read_text().splitlines() if l.strip() and json.loads(l)['iteration'] < iterations_done]
        _write_text(path, ''.join(l + '\n' for l in keep))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    tmp.write_text(text)
    os.replace(tmp, path)


def run_evolve(cfg: EvolveConfig, out, *, overwrite: bool = False, progress: bool = True,
               on_iteration: Optional[Callable] = None, resume: bool = False, callbacks: Optional[list] = None):
    """Run one evolution into ``out``; returns ``(learned_space, strategy)``. With ``resume``, continue the
    run in ``out`` from its newest complete checkpoint (``out/checkpoints``). ``callbacks`` are extra
    Lightning callbacks for the supernet trainer."""
    import torch
    from . import __version__
    from .data import load_dataset
    from .space.exploration import ExplorationSpace
    from .space.skeleton import Skeleton
    from .strategy.autospace import AutoSpace
    from .strategy.checkpoint import load_checkpoint
    from .training import make_evaluator

    if os.environ.get('AUTOSPACE_QUIET'):
        quiet_libraries()
    out = Path(out)
    skeleton = Skeleton.preset(cfg.skeleton, grouping=cfg.grouping)
    data = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    if cfg.fit_input:
        skeleton = skeleton.replace(input_shape=tuple(data.input_shape), num_classes=data.num_classes)
    if tuple(data.input_shape) != tuple(skeleton.input_shape):
        raise AutoSpaceError(f'dataset {cfg.dataset} has input {data.input_shape} but skeleton {cfg.skeleton} expects '
                             f'{skeleton.input_shape}; pick a matching --skeleton (digits: tiny-8, fashion-mnist: '
                             'mobile-28), or give --fit-input to take the input and classes from the dataset')
    if cfg.device == 'cuda' and not torch.cuda.is_available():
        raise AutoSpaceError('--device cuda was given but no CUDA device is available; use --device cpu')
    strategy = AutoSpace(**cfg.strategy_kwargs(), checkpoint_dir=str(out / 'checkpoints'))  # validates options
    if cfg.budget_madds is not None:
        from .space.network import fixed_cost
        floor = fixed_cost(skeleton).madds
        if cfg.budget_madds <= floor:
            raise AutoSpaceError(f'budget {cfg.budget_madds:.4g} MAdds is below the fixed layers alone '
                                 f'({floor} MAdds for skeleton {cfg.skeleton}); raise --budget-madds')
    # Under DDP Lightning re-runs this command once per extra rank (LOCAL_RANK set); only global rank 0
    # touches the run folder, the other ranks only train.
    from pytorch_lightning.utilities.rank_zero import rank_zero_only
    main = getattr(rank_zero_only, 'rank', 0) == 0
    with (run_dir_lock(out) if main else contextlib.nullcontext()):   # one writer per run folder
        ckpt = None
        if resume:
            ckpt = AutoSpace.find_checkpoint(out / 'checkpoints')
            # checkpoint files, none of them loadable (corrupt, or not weights only): never silently replaced
            unreadable = ckpt is None and any((out / 'checkpoints' / n).exists() for n in (AutoSpace.CHECKPOINT,
                                                                                          AutoSpace.PREVIOUS))
            state = None if ckpt is None else load_checkpoint(ckpt)
            at_start = state is not None and _untrained(state)
            if at_start:
                # the checkpoint of a run's start: starting again is the exact resume, also when the kill came
                # after iteration 0's history line but before the checkpoint that follows it
                ckpt = state = None
            elif ckpt is None and (_lines(out / 'history.jsonl') or unreadable):
                raise RunDirError(f'{out} has no complete checkpoint to resume from; start again with --overwrite')
            if ckpt is None:   # killed before its first iteration's checkpoint: nothing to keep, the same run again
                if main:
                    prepare_run_dir(out, overwrite=True)
            else:
                done = state['autospace']['evolution']['iteration']
                if main:
                    _truncate_history(out / 'history.jsonl', done)
        elif main:
            prepare_run_dir(out, overwrite=overwrite)

        torch.manual_seed(cfg.seed)
        strategy.dataset_name = cfg.dataset
        space = ExplorationSpace(skeleton)
        from pytorch_lightning.loggers import TensorBoardLogger
        logger = TensorBoardLogger(str(out), name='tb', version='')
        evaluator = make_evaluator(data, max_epochs=cfg.iterations, batch_size=cfg.batch_size, learning_rate=cfg.lr,
                                   accelerator=cfg.device, devices=cfg.devices, logger=logger, seed=cfg.seed,
                                   # a step uses only the K sampled cells of each weight pool
                                   strategy='ddp_find_unused_parameters_true' if cfg.devices > 1 else 'auto',
                                   default_root_dir=str(out), callbacks=callbacks, report_to_nni=False)
        run_info = {'command': 'evolve', 'config': dataclasses.asdict(cfg), 'resumed_from': ckpt, 'package_version': __version__,
                    'torch': torch.__version__, 'status': 'running', 'started': time.strftime('%Y-%m-%d %H:%M:%S'),
                    'data': data.summary()}
        if main:
            _write_json(out / 'run.json', run_info)

        bar = None
        if progress and main:
            from tqdm.auto import tqdm
            bar = tqdm(total=cfg.iterations, desc='evolve', unit='it', dynamic_ncols=True)
            if ckpt is not None:
                bar.update(done)
        history_path = out / 'history.jsonl'

        def on_end(strat, record):
            if not main:
                return
            with open(history_path, 'a') as f:
                f.write(json.dumps(record, default=float) + '\n')
            if bar is not None:
                best = max(v for k, v in record.items() if k.startswith('fitness_max/'))
                bar.set_postfix(val_acc=f'{record["val_acc"]:.3f}', madds=f'{record["expected_madds"] / 1e6:.2f}M',
                                best_f=f'{best:.3f}', warm='y' if record['warmup'] else 'n')
                bar.update(1)
            if on_iteration is not None:
                on_iteration(strat, record)

        def on_rollback(strat, fault):
            if not main:
                return
            done_at = load_checkpoint(fault['checkpoint'])['autospace']['evolution']['iteration']
            _truncate_history(history_path, done_at)
            run_info.setdefault('rollbacks', []).append(fault)
            _write_json(out / 'run.json', run_info)
            msg = (f'numerical fault at iteration {fault["iteration"]}: {fault["error"]}; rolled back to iteration '
                   f'{done_at} with learning rates x{fault["lr_scale"]:g}')
            if bar is not None:
                bar.write(msg)
                bar.n = done_at
                bar.refresh()
            else:
                import sys
                print(msg, file=sys.stderr)

        strategy.on_iteration_end.append(on_end)
        strategy.on_rollback.append(on_rollback)
        try:
            learned = strategy.evolve(space, evaluator, resume_from=ckpt)
        except BaseException as e:
            if main:
                run_info.update(status='interrupted' if isinstance(e, KeyboardInterrupt) else 'failed',
                                error=f'{type(e).__name__}: {e}')
                _write_json(out / 'run.json', run_info)
            raise
        finally:
            if bar is not None:
                bar.close()
        learned.provenance['data'] = data.summary()
        if cfg.devices > 1:
            learned.provenance['ddp_rank'] = 0 if main else rank_zero_only.rank
        dump = os.environ.get('AUTOSPACE_DDP_DUMP')
        if dump:   # tests: each rank shows what it learned and the weights it ended with
            rank = 0 if main else rank_zero_only.rank
            learned.save(Path(dump) / f'rank{rank}.json')
            torch.save(strategy.supernet.state_dict(), Path(dump) / f'rank{rank}.weights.pt')
        if not main:
            return learned, strategy
        learned.save(out / 'learned_space.json')
        run_info.update(status='done', finished=time.strftime('%Y-%m-%d %H:%M:%S'), iterations=strategy.iteration,
                        wall_time_s=learned.provenance.get('wall_time_s'),
                        converged=learned.provenance.get('converged'))
        _write_json(out / 'run.json', run_info)
        return learned, strategy
