"""Is the learned space better than the hand-made one? The fair protocol: matched MAdds, paired seeds, real
training, EDFs with bands.

    .venv/bin/python benchmarks/space_quality.py --scale smoke|cpu|gpu [--work DIR] [--device cpu|cuda]
                                                 [--report-only | --only edfs|p1|p2|side]

--work defaults to runs/space_quality_smoke for smoke and docs/results/space_quality_<scale> otherwise (the
first protocol's cpu units, before matched MAdds and paired seeds, are kept in docs/results/space_quality_v1_cpu).
Every unit (an evolution, one search + retrain, one EDF network) is cached there, so a killed run resumes and a
run spread over several sessions keeps what it finished; ``--report-only`` writes the report from the cache
without training anything (units not yet run are listed as pending); ``--only STEP`` trains the evolutions and
that step's units only (the EDFs, P1, P2 or the side questions) and reports the rest from the cache, so that two
steps can run at once, each in its own process (one thread each on a 2-core machine), on the same --work. Two
processes may also run the same step: each search + retrain unit is held by one process at a time (an OS file lock
on its folder), and the other process lists it as pending and goes on to the next.

1. **Evolve** a learned space at the budget B with the reference and one without (the ablation), and one at a
   second budget (budget specialisation), with the package's default fitness estimator; and two redesigns at B
   (step 3). The report gives each evolution's score reliability (how much of its scores' spread tells cells
   apart).
2. **P1, paired seeds.** For each algorithm (DARTS, one-shot; NNI's RegularizedEvolution through the training
   service, multi-trial) and each seed, search the learned space and the manual space (ProxylessNAS's) with the
   same budget, data and seed. Every search fills its budget: the winner lands in [0.9 B, B]. Each winner is
   retrained from scratch on the full training split (the held-out split cut from it) and tested once on the
   official test split, which nothing else uses. The paired difference is tested with scipy's Wilcoxon
   signed-rank test (and a paired t-test beside it). The redesigns (step 3) are searched the same way, and their
   winners are paired with the same manual-space winners.
3. **EDFs.** n random networks per space with MAdds in [0.9 B, B], each trained a few epochs; their error EDFs
   with 90% bootstrap bands, and the bootstrap interval of the difference in mean error. Besides `learned` and
   `manual`, two redesigns, each evolved exactly like `learned` but for one option: `learned-1edge`, from
   single-edge cells only (``n_nodes=2``: one op, with its expand ratio, activation and SE, between the block's
   expand and project convolutions), the family within which the estimator's ranking agrees with training alone
   (the fitness-quality benchmark's cells; the report gives Kendall's τ in each family); and `learned-eval-all`,
   whose paired-eval scores every cell on the whole held-out split instead of a fresh draw of 256 images each
   iteration (the draw is most of the default evolution's score noise). Then the *retest*: the first retest_n
   networks of the retest_spaces' EDFs trained once more, same architectures and recipe, other seeds
   (RETEST_SEED), so the report can say how much of a network's error is its architecture's and how much its
   training run's, and so how far any score could follow it.
4. **Reference on vs off.** Convergence (first iteration from which every top-M set stays unchanged 3
   iterations) and final quality (DARTS winners of both spaces, paired by seed).
5. **Budget specialisation.** Spaces learned at two budgets that both bind, each searched (DARTS) at both.
6. **P2.** The learned space searched once more at P2's budget of 25 M MAdds (winner in [0.9, 1] x 25 M; the
   report gives each space's priciest network, so it shows whether a space can reach that budget at all), and
   that winner trained for longer with translations and random erasing, tested once: first for p2_epochs[0]
   epochs, then, while its held-out accuracy (not the test split's, which picks nothing) is below the goal's
   0.955, from scratch for each next number of epochs in p2_epochs, and then with p2_regularised's recipe: the
   same epochs with horizontal flips and a weight decay of 5e-4 instead of 4e-5 (the base recipe's network fits
   its training split almost perfectly, so what limits it is generalisation; flips and that weight decay are the
   common recipe of small-image classifiers, CIFAR's ResNets for one). P2's network is the rung with the best
   held-out accuracy. Each rung's network is exported to <unit>/model and examined (<unit>/diagnosis.json,
   benchmarks/_diagnosis.py: its accuracy on the un-augmented training split, its test errors by class), so the
   report can say why P2 lands where it does, and what each rung's recipe changed.

Units run in the order 1, 2 for `learned` (seed-major, so every finished seed is a complete pair), 3 (the EDFs
grown together), 6, 2 for the redesigns whose EDF is not worse than the manual space's (the EDF is the cheaper
screen), then the side questions 5 (seed-major, the small budget first) and 4: the goals P1 and P2 are decided
first. Once the pending seeds can no longer bring some algorithm's Wilcoxon p below 0.1 (``best_case_p``) for a
learned space (P1 needs both algorithms), that space's remaining P1 units move to the end, after 3, 6, 5 and 4:
they can only refine the gap's estimate, not the verdict (the manual space's units stay in the seed-major order
while any learned space is undecided). There they run space by space in P1_LEARNED's order, so the default space's
table (summary.json's P1) fills its seeds first.

A Pareto plot (test accuracy against MAdds of every retrained winner, both spaces) and the EDF plot go next to
docs/benchmarks.md ("Space quality (<scale>)"); <work>/summary.json holds the P1/P2 figures, and the README's
bullets on what was found, between its ``<!-- space_quality <scale>: begin -->`` and ``end`` markers, are rewritten
from the same figures (benchmarks/_headline.py).
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paired import p1_open  # noqa: E402
from benchmarks._p2_report import P2_GOAL, P2_MADDS, p2_ladder, p2_tag, rung_of  # noqa: E402
from benchmarks._space_report import EDF_SPACES, P1_ALPHA, P1_LEARNED, edf_screened_out, report  # noqa: E402

STEPS = ('edfs', 'p1', 'p2', 'side')     # what --only may pick: the units of one step of the protocol
RETEST_SEED = 1000    # the EDF retest trains its i-th network with seed RETEST_SEED + i (the EDF itself with i)

SCALES = {
    'smoke': dict(dataset='digits', skeleton='tiny-8', budget=3.5e5, spec_budget=2.5e5, evolve_limit=400,
                  iterations=4, population=8, sample_k=2, search_limit=400, search_epochs=1, trials=2, trial_epochs=1,
                  seeds=[0, 1], retrain_epochs=1, retrain_batch=64, retrain_lr=0.05, edf_n=3, edf_epochs=1,
                  edf_limit=400, strategies=['darts', 'random'], p2_strategy='random', p2_epochs=(1, 2), boot=200,
                  p2_regularised=dict(epochs=2, flip=True, weight_decay=5e-4), side_seeds=1, retest_n=2,
                  retest_spaces=('learned',)),
    # sized on 2 cores: each unit records its own search time (search.json's search_wall_time_s: DARTS on
    # the learned space is the longest, its multi-edge cells make the biggest supernet); a full-data retrain of
    # a ~12 M MAdds network (10 epochs on 50k images) saves every epoch; well over a day in all, so it runs
    # over many sessions from its cache
    'cpu': dict(dataset='fashion-mnist', skeleton='mobile-28', budget=12e6, spec_budget=7e6, evolve_limit=6000,
                iterations=12, population=24, sample_k=4, search_limit=6000, search_epochs=2, trials=10,
                trial_epochs=1, seeds=[0, 1, 2, 3, 4], retrain_epochs=10, retrain_batch=128, retrain_lr=0.1,
                edf_n=40, edf_epochs=3, edf_limit=10000, strategies=['darts', 'evolution'], p2_strategy='evolution',
                p2_epochs=(40, 100), p2_regularised=dict(epochs=100, flip=True, weight_decay=5e-4), boot=2000,
                side_seeds=3, retest_n=20, retest_spaces=('learned-eval-all',)),
    'gpu': dict(dataset='fashion-mnist', skeleton='mobile-28', budget=12e6, spec_budget=7e6, evolve_limit=None,
                iterations=30, population=64, sample_k=4, search_limit=None, search_epochs=10, trials=30,
                trial_epochs=3, seeds=[0, 1, 2, 3, 4, 5, 6, 7], retrain_epochs=30, retrain_batch=128, retrain_lr=0.1,
                edf_n=60, edf_epochs=5, edf_limit=None, strategies=['darts', 'evolution'], p2_strategy='evolution',
                p2_epochs=(200, 400), p2_regularised=dict(epochs=400, flip=True, weight_decay=5e-4), boot=2000,
                side_seeds=5, retest_n=20,
                retest_spaces=('learned-eval-all', 'learned')),
}

class Pending(Exception):
    """A unit not in the cache while --report-only."""


def _cached(path: Path, make, report_only: bool):
    from benchmarks._report import cached
    if report_only and not path.exists():
        raise Pending(str(path))
    return cached(path, make)


def _diagnose(model: Path, data, device: str) -> dict:
    """:func:`benchmarks._diagnosis.diagnose` of the network exported to ``model`` (arch.json, model_state.pt)."""
    import torch
    from autospace_nni.space.network import Architecture
    from benchmarks._diagnosis import diagnose
    net = Architecture.from_dict(json.loads((model / 'arch.json').read_text())).build()
    net.load_state_dict(torch.load(model / 'model_state.pt', map_location='cpu', weights_only=True))
    return diagnose(net, data, device=device)


def _learn(S, out: Path, device: str, report_only: bool, **changes):
    """The space learned into ``out`` (evolving it first unless it is there; a killed evolution continues from
    its checkpoint)."""
    from autospace_nni.pipeline import EvolveConfig, run_evolve
    from autospace_nni.space.learned import LearnedSpace
    from autospace_nni.strategy.autospace import AutoSpace
    if not (out / 'learned_space.json').exists():
        if report_only:
            raise Pending(str(out))
        settings = dict(dataset=S['dataset'], skeleton=S['skeleton'], iterations=S['iterations'],
                        population_size=S['population'], sample_k=S['sample_k'], seed=0, reference='default',
                        budget_madds=S['budget'], patience=0, limit=S['evolve_limit'], device=device)
        cfg = EvolveConfig.from_flat(**{**settings, **changes})
        resume = (out / 'checkpoints').is_dir() and AutoSpace.find_checkpoint(out / 'checkpoints') is not None
        run_evolve(cfg, out, overwrite=not resume, resume=resume, progress=True)
    return LearnedSpace.load(out / 'learned_space.json')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scale', choices=list(SCALES), default='smoke')
    ap.add_argument('--work', default=None)
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--port', type=int, default=8761)
    ap.add_argument('--report-only', action='store_true', help='train nothing: report what the cache holds')
    ap.add_argument('--no-write', action='store_true', help='do not touch docs/benchmarks.md')
    ap.add_argument('--only', choices=STEPS, default=None,
                    help="train only the evolutions and this step's units (the EDFs, P1's pairs, P2's rungs or the "
                         'side questions); report the rest from the cache')
    args = ap.parse_args()
    S, ro = SCALES[args.scale], args.report_only
    if ro and args.only:
        ap.error('--report-only trains nothing: it takes no --only')

    def trains(step):
        """Whether this invocation trains ``step``'s units (the others come from the cache or are pending)."""
        return not ro and args.only in (None, step)
    work = Path(args.work or (ROOT / 'runs' / 'space_quality_smoke' if args.scale == 'smoke' else
                              ROOT / 'docs' / 'results' / f'space_quality_{args.scale}'))
    work.mkdir(parents=True, exist_ok=True)

    from autospace_nni.cli import _quiet_nni_warnings
    _quiet_nni_warnings()
    from autospace_nni.data import load_dataset
    from autospace_nni.design_space import sample_space
    from autospace_nni.pipeline import RunDirError, quiet_libraries
    from autospace_nni.retrain import retrain
    from autospace_nni.search import run_search
    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.network import Architecture
    from autospace_nni.space.skeleton import Skeleton
    from benchmarks._report import claimed
    quiet_libraries()
    full = load_dataset(S['dataset'], seed=0)                       # the full training split, val cut from it
    search_data = load_dataset(S['dataset'], seed=0, limit=S['search_limit'])
    edf_data = load_dataset(S['dataset'], seed=0, limit=S['edf_limit'])
    skeleton = Skeleton.preset(S['skeleton'])
    B = S['budget']
    pending = []

    def attempt(fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Pending as p:
            pending.append(str(p))
            return None

    # 1. the learned spaces
    spaces = {'learned': attempt(_learn, S, work / 'evolve_ref-default', args.device, ro),
              'learned-no-ref': attempt(_learn, S, work / 'evolve_ref-none', args.device, ro, reference=None),
              'learned-small': attempt(_learn, S, work / 'evolve_budget-small', args.device, ro,
                                       budget_madds=S['spec_budget']),
              # the redesign: only single-edge cells (one op between input and output, in the expand/project
              # block), the family in which the estimator's ranking agrees with stand-alone training
              'learned-1edge': attempt(_learn, S, work / 'evolve_1edge', args.device, ro, n_nodes=2),
              # the second redesign: paired-eval on every held-out image (the option is capped at the split's
              # size) instead of a fresh draw of 256 each iteration, which the score reliability of the default
              # evolution points to as the main source of its noise
              'learned-eval-all': attempt(_learn, S, work / 'evolve_eval-all', args.device, ro, eval_images=10 ** 6),
              'manual': manual_space(skeleton)}

    def search_retrain(step, space_name, strategy, seed, budget, tag, epochs=S['retrain_epochs'], erase=False,
                       search=None, export=False, recipe=None):
        """One unit of ``step``: ``space_name`` searched with ``strategy`` (or ``search``'s winner taken from that
        unit's cache), the winner retrained ``epochs`` epochs (``recipe``: more of retrain's options, kept in the
        record) and tested once; with ``export`` the trained network is also written to ``<tag>/model``
        (``autospace-nni train``'s export: state dict, TorchScript, ONNX)."""
        space = spaces[space_name]
        if space is None:
            pending.append(tag)
            return None

        def make():
            # two processes may share one cache (each `--only side`, say): a unit another process holds is skipped
            # and listed as pending, so that each takes the next free one
            try:
                return claimed(work / tag / 'result.json', train)
            except RunDirError:
                raise Pending(f'{tag} (held by another process)') from None

        def train():
            def find():
                if search:    # another unit's winner, trained here for longer
                    return json.loads((work / search / 'search.json').read_text())
                return run_search(space, strategy, search_data, budget_madds=budget, epochs=S['search_epochs'],
                                  seed=seed, trials=S['trials'], trial_epochs=S['trial_epochs'], port=args.port,
                                  out_dir=work / tag, dataset_name=S['dataset'], limit=S['search_limit'],
                                  device=args.device, budget_floor=0.9)
            # the search is cached on its own, so a run killed during the retrain resumes after the search
            rec = _cached(work / tag / 'search.json', find, report_only=False)
            # and the retrain saves every epoch, so a run killed part-way through it loses one epoch at most
            m = retrain(Architecture(skeleton, rec['sample']), full, epochs=epochs, seed=seed,
                        batch_size=S['retrain_batch'], lr=S['retrain_lr'], augment=True, erase=erase,
                        **(recipe or {}), device=args.device, checkpoint=work / tag / 'retrain.ckpt',
                        out_dir=work / tag / 'model' if export else None)
            return {'strategy': strategy, 'space': space_name, 'seed': seed, 'budget': budget, 'madds': rec['madds'],
                    'params': rec['params'], 'budget_window': rec['budget_window'], 'test_acc': m['test_acc'],
                    'val_acc': m['val_acc'], 'sample': rec['sample'], 'retrain_epochs': epochs, 'erase': erase,
                    'search_wall_time_s': rec['search_wall_time_s'], 'retrain_wall_time_s': m['wall_time_s'],
                    'val_history': [h['val_acc'] for h in m['history']], **({'recipe': recipe} if recipe else {})}
        return attempt(_cached, work / tag / 'result.json', make, not trains(step))

    # 2. P1: seed-major, so that every finished seed is a complete pair. Once the pending seeds cannot bring some
    #    algorithm's p below 0.1 for a learned space (best_case_p >= 0.1: P1 needs both algorithms, so that decides
    #    it), its remaining units wait until the EDFs, P2 and the side questions have run: the compute goes to the
    #    questions still open first. Each learned space of P1_LEARNED is paired with the same manual-space units; the
    #    default one goes first, the redesign's after P2 (its EDF, the cheaper screen, runs first). Decided from the
    #    cache alone too, so pending units are listed in run order.
    p1_rows, later = {}, {}

    def p1_units(seed, names):
        for strategy in S['strategies']:
            for name in names:
                tag = f'p1_{strategy}_{name}_seed{seed}'
                if tag not in p1_rows:     # a manual unit pairs with every learned space: it runs (and counts) once
                    p1_rows[tag] = search_retrain('p1', name, strategy, seed, B, tag)

    def p1_round(names):
        for seed in S['seeds']:
            done = [r for r in p1_rows.values() if r is not None]
            undecided = [n for n in names if p1_open(done, S, B, n, P1_ALPHA)]
            if undecided:
                p1_units(seed, undecided + ['manual'])
            later.setdefault(seed, []).extend(n for n in names if n not in undecided)

    p1_round(P1_LEARNED[:1])
    # 3. EDFs in [0.9 B, B], both grown together a few networks at a time (the samples are a fixed sequence, so
    #    a shorter run trains a prefix of the longer one), so that a run stopped part-way compares equal n
    edf_dirs = {}
    names = [name for name in EDF_SPACES if spaces[name] is not None]
    stride = max(1, S['edf_n'] // 8)
    for k in (range(stride, S['edf_n'] + stride, stride) if trains('edfs') else []):
        for name in names:
            sample_space(spaces[name], edf_data, work / f'edf_{name}', n=min(k, S['edf_n']), epochs=S['edf_epochs'],
                         madds_range=(0.9 * B, B), name=name, progress=True, device=args.device)

    def n_done(d):
        return len((d / 'design_space.jsonl').read_text().splitlines()) if (d / 'design_space.jsonl').exists() else 0
    for name in EDF_SPACES:
        d = work / f'edf_{name}'
        if spaces[name] is None:
            pending.append(f'{d} (0/{S["edf_n"]})')
            continue
        k = n_done(d)
        if k < S['edf_n']:
            pending.append(f'{d} ({k}/{S["edf_n"]})')
        if k:
            edf_dirs[name] = d
    # the EDF's training noise: the first retest_n networks of some EDFs (the same architectures: the sample sequence
    # is fixed) trained again with other seeds, so the report can say how much of a network's error is its own
    for name in S['retest_spaces']:
        d = work / f'edf_{name}_retest'
        if trains('edfs') and spaces[name] is not None:
            sample_space(spaces[name], edf_data, d, n=S['retest_n'], epochs=S['edf_epochs'], madds_range=(0.9 * B, B),
                         name=name, progress=True, device=args.device, train_seed=RETEST_SEED)
        if (k := n_done(d)) < S['retest_n']:
            pending.append(f'{d} ({k}/{S["retest_n"]})')

    # 6. P2: the learned space searched again at the P2 budget (so its winner fills [0.9, 1] x 25 M rather than
    #    P1's 12 M), and that winner trained longer with translations and random erasing: for the first number of
    #    epochs of p2_epochs, then from scratch for the next rung of p2_ladder (more epochs, then a more regularised
    #    recipe) while its held-out accuracy (never the test split's) stays below the goal
    p2_rungs, ladder = [], p2_ladder(S)
    for rung in ladder:
        done = search_retrain('p2', 'learned', S['p2_strategy'], 0, P2_MADDS, p2_tag(S, rung), epochs=rung['epochs'],
                              erase=True, search=p2_tag(S, ladder[0]) if p2_rungs else None, export=True,
                              recipe={k: v for k, v in rung.items() if k != 'epochs'})
        if done is None:
            break
        p2_rungs.append(done)
        if done['val_acc'] >= P2_GOAL:
            break
    # each finished rung's network examined: its fit of the un-augmented training split and its test errors by
    # class, so that the report can say why P2's network (the best held-out rung) lands where it does, and what a
    # rung's recipe changed (a rung trained before networks were exported has none)
    for done in p2_rungs:
        model = work / p2_tag(S, rung_of(done)) / 'model'
        if (model / 'model_state.pt').exists():
            attempt(_cached, model.parent / 'diagnosis.json', lambda m=model: _diagnose(m, full, args.device),
                    not trains('p2'))
    # the redesigns' P1, screened by their EDFs: one whose complete EDF lies right of the manual one, outside the
    # bands, waits with the decided units
    screened = [n for n in P1_LEARNED[1:] if edf_screened_out(S, edf_dirs, n)]
    p1_round([n for n in P1_LEARNED[1:] if n not in screened])
    for seed in S['seeds']:
        later.setdefault(seed, []).extend(screened)

    # the side questions, then P1's deferred units (they only narrow a gap whose verdict is known; the side
    # questions have no answer yet)
    side, rows = S['seeds'][:S['side_seeds']], []
    # 5. budget specialisation: both spaces learned at a budget, each searched at both (DARTS, the side seeds).
    #    Seed-major, the small budget's pair first, so that every finished seed answers a question
    for seed in side:
        for bname, budget in (('small', S['spec_budget']), ('large', B)):
            for sname in ('learned-small', 'learned'):
                if sname == 'learned' and bname == 'large':
                    continue   # that is P1's DARTS row
                rows.append(search_retrain('side', sname, 'darts', seed, budget, f'spec_{sname}_at-{bname}_seed{seed}'))
    # 4. reference off: its DARTS winners, paired by seed with the learned space's
    for seed in side:
        rows.append(search_retrain('side', 'learned-no-ref', 'darts', seed, B, f'p1_darts_learned-no-ref_seed{seed}'))
    for name in P1_LEARNED:    # the deferred pairs: the default space's first (summary.json's P1), each seed-major
        for seed, deferred in later.items():
            if name in deferred:
                p1_units(seed, [name, 'manual'])
    rows = [r for r in [*p1_rows.values(), *rows] if r is not None]

    out_dir = work if args.no_write else ROOT / 'docs'
    fq_work = ROOT / ('runs' if args.scale == 'smoke' else 'docs/results') / f'fitness_quality_{args.scale}'
    body, _ = report(args.scale, S, work, spaces, rows, edf_dirs, p2_rungs, pending, out_dir, fq_work)
    # the README's bullets, from the same rows and caches (so no figure there is typed by hand)
    from benchmarks._anatomy import estimator_bias
    from benchmarks._headline import headline
    found = headline(S, work, rows, edf_dirs, p2_rungs, spaces, estimator_bias(fq_work))
    print(body, '\n\nThe README\'s bullets:\n' + found)
    if not args.no_write:
        from benchmarks._report import write_block, write_section
        write_section(f'Space quality ({args.scale})', f'python benchmarks/space_quality.py --scale {args.scale}', body)
        if not write_block(ROOT / 'README.md', f'space_quality {args.scale}', found):
            print(f'README.md has no "<!-- space_quality {args.scale}: begin -->" marker: its bullets are not written')


if __name__ == '__main__':
    from autospace_nni import interrupts
    try:   # Ctrl-C or SIGTERM (kill, timeout, a scheduler) stops NNI's manager too, and keeps every finished unit
        with interrupts.watching():
            main()
    except KeyboardInterrupt:
        sys.exit(interrupts.stopped('space_quality', 'finished units (and retrains up to their last epoch) are '
                                    'kept in --work: the same command goes on from them'))
