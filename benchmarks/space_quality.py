"""Is the learned space better than the hand-made one? The fair protocol: matched MAdds, paired seeds, real
training, EDFs with bands.

    .venv/bin/python benchmarks/space_quality.py --scale smoke|cpu|gpu [--work DIR] [--device cpu|cuda]
                                                 [--report-only]

--work defaults to runs/space_quality_smoke for smoke and docs/results/space_quality_<scale> otherwise (the
first protocol's cpu units, before matched MAdds and paired seeds, are kept in docs/results/space_quality_v1_cpu).
Every unit (an evolution, one search + retrain, one EDF network) is cached there, so a killed run resumes and a
run spread over several sessions keeps what it finished; ``--report-only`` writes the report from the cache
without training anything (units not yet run are listed as pending).

1. **Evolve** a learned space at the budget B with the reference and one without (the ablation), and one at a
   second budget (budget specialisation), with the package's default fitness estimator.
2. **P1, paired seeds.** For each algorithm (DARTS, one-shot; NNI's RegularizedEvolution through the training
   service, multi-trial) and each seed, search the learned space and the manual space (ProxylessNAS's) with the
   same budget, data and seed. Every search fills its budget: the winner lands in [0.9 B, B]. Each winner is
   retrained from scratch on the full training split (the held-out split cut from it) and tested once on the
   official test split, which nothing else uses. The paired difference is tested with scipy's Wilcoxon
   signed-rank test (and a paired t-test beside it).
3. **EDFs.** n random networks per space with MAdds in [0.9 B, B], each trained a few epochs; their error EDFs
   with 90% bootstrap bands, and the bootstrap interval of the difference in mean error.
4. **Reference on vs off.** Convergence (first iteration from which every top-M set stays unchanged 3
   iterations) and final quality (DARTS winners of both spaces, paired by seed).
5. **Budget specialisation.** Spaces learned at two budgets that both bind, each searched (DARTS) at both.
6. **P2.** The learned space searched once more at P2's budget of 25 M MAdds (winner in [0.9, 1] x 25 M; the
   report gives each space's priciest network, so it shows whether a space can reach that budget at all), and
   that winner trained for longer with translations and random erasing, tested once.

Units run in the order 1, 2 (seed-major, so every finished seed is a complete pair), 3 (both EDFs grown together),
6, then the side questions 4 and 5: the goals P1 and P2 are decided first. Once the pending seeds can no longer
bring any algorithm's Wilcoxon p below 0.1 (``best_case_p``), P1's remaining seeds move to the end, after 3, 6, 4
and 5: they can only refine the gap's estimate, not the verdict.

A Pareto plot (test accuracy against MAdds of every retrained winner, both spaces) and the EDF plot go next to
docs/benchmarks.md ("Space quality (<scale>)"); <work>/summary.json holds the P1/P2 figures.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paired import best_case_p, p1_deltas, paired_test  # noqa: E402

SCALES = {
    'smoke': dict(dataset='digits', skeleton='tiny-8', budget=3.5e5, spec_budget=2.5e5, evolve_limit=400,
                  iterations=4, population=8, sample_k=2, search_limit=400, search_epochs=1, trials=2, trial_epochs=1,
                  seeds=[0, 1], retrain_epochs=1, retrain_batch=64, retrain_lr=0.05, edf_n=3, edf_epochs=1,
                  edf_limit=400, strategies=['darts', 'random'], p2_strategy='random', p2_epochs=1, boot=200,
                  side_seeds=1),
    # sized on 2 cores: each unit records its own search time (search.json's search_wall_time_s: DARTS on
    # the learned space is the longest, its multi-edge cells make the biggest supernet); a full-data retrain of
    # a ~12 M MAdds network (10 epochs on 50k images) saves every epoch; well over a day in all, so it runs
    # over many sessions from its cache
    'cpu': dict(dataset='fashion-mnist', skeleton='mobile-28', budget=12e6, spec_budget=7e6, evolve_limit=6000,
                iterations=12, population=24, sample_k=4, search_limit=6000, search_epochs=2, trials=10,
                trial_epochs=1, seeds=[0, 1, 2, 3, 4], retrain_epochs=10, retrain_batch=128, retrain_lr=0.1,
                edf_n=40, edf_epochs=3, edf_limit=10000, strategies=['darts', 'evolution'], p2_strategy='evolution',
                p2_epochs=40, boot=2000, side_seeds=3),
    'gpu': dict(dataset='fashion-mnist', skeleton='mobile-28', budget=12e6, spec_budget=7e6, evolve_limit=None,
                iterations=30, population=64, sample_k=4, search_limit=None, search_epochs=10, trials=30,
                trial_epochs=3, seeds=[0, 1, 2, 3, 4, 5, 6, 7], retrain_epochs=30, retrain_batch=128, retrain_lr=0.1,
                edf_n=60, edf_epochs=5, edf_limit=None, strategies=['darts', 'evolution'], p2_strategy='evolution',
                p2_epochs=200, boot=2000, side_seeds=5),
}
P2_MADDS = 25e6


def p2_tag(S) -> str:
    """The cache folder of P2's search + retrain at scale ``S``."""
    return f'p2_{S["p2_strategy"]}_learned_{S["p2_epochs"]}epochs'


class Pending(Exception):
    """A unit not in the cache while --report-only."""


def _cached(path: Path, make, report_only: bool):
    from benchmarks._report import cached
    if report_only and not path.exists():
        raise Pending(str(path))
    return cached(path, make)


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


def convergence(history, stable_for=3):
    """First iteration from which every top-M set stayed unchanged ``stable_for`` iterations (None: never)."""
    for h in history:
        if h.get('stable_iterations', 0) >= stable_for:
            return h['iteration'] - stable_for + 1
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scale', choices=list(SCALES), default='smoke')
    ap.add_argument('--work', default=None)
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--port', type=int, default=8761)
    ap.add_argument('--report-only', action='store_true', help='train nothing: report what the cache holds')
    ap.add_argument('--no-write', action='store_true', help='do not touch docs/benchmarks.md')
    args = ap.parse_args()
    S, ro = SCALES[args.scale], args.report_only
    work = Path(args.work or (ROOT / 'runs' / 'space_quality_smoke' if args.scale == 'smoke' else
                              ROOT / 'docs' / 'results' / f'space_quality_{args.scale}'))
    work.mkdir(parents=True, exist_ok=True)

    from autospace_nni.cli import _quiet_nni_warnings
    _quiet_nni_warnings()
    from autospace_nni.data import load_dataset
    from autospace_nni.design_space import mean_error_ci, plot_edfs, sample_space
    from autospace_nni.pipeline import quiet_libraries
    from autospace_nni.retrain import retrain
    from autospace_nni.search import run_search
    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.network import Architecture
    from autospace_nni.space.skeleton import Skeleton
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
              'manual': manual_space(skeleton)}

    def search_retrain(space_name, strategy, seed, budget, tag, epochs=S['retrain_epochs'], erase=False):
        space = spaces[space_name]
        if space is None:
            pending.append(tag)
            return None

        def make():
            # the search is cached on its own, so a run killed during the retrain resumes after the search
            rec = _cached(work / tag / 'search.json', lambda: run_search(
                space, strategy, search_data, budget_madds=budget, epochs=S['search_epochs'], seed=seed,
                trials=S['trials'], trial_epochs=S['trial_epochs'], port=args.port, out_dir=work / tag,
                dataset_name=S['dataset'], limit=S['search_limit'], device=args.device, budget_floor=0.9),
                report_only=False)
            # and the retrain saves every epoch, so a run killed part-way through it loses one epoch at most
            m = retrain(Architecture(skeleton, rec['sample']), full, epochs=epochs, seed=seed,
                        batch_size=S['retrain_batch'], lr=S['retrain_lr'], augment=True, erase=erase,
                        device=args.device, checkpoint=work / tag / 'retrain.ckpt')
            return {'strategy': strategy, 'space': space_name, 'seed': seed, 'budget': budget, 'madds': rec['madds'],
                    'params': rec['params'], 'budget_window': rec['budget_window'], 'test_acc': m['test_acc'],
                    'val_acc': m['val_acc'], 'sample': rec['sample'], 'retrain_epochs': epochs, 'erase': erase,
                    'search_wall_time_s': rec['search_wall_time_s'], 'retrain_wall_time_s': m['wall_time_s']}
        return attempt(_cached, work / tag / 'result.json', make, ro)

    # 2. P1: seed-major, so that every finished seed is a complete pair. Once no pending seed can change any
    #    algorithm's verdict (best_case_p >= 0.1), the remaining seeds wait until the EDFs and P2 have run: the
    #    compute goes to the questions still open first
    def p1_seed(seed):
        return [search_retrain(name, strategy, seed, B, f'p1_{strategy}_{name}_seed{seed}')
                for strategy in S['strategies'] for name in ('learned', 'manual')]

    def p1_decided(done):
        done = [r for r in done if r is not None]
        return all(best_case_p(d, len(S['seeds']) - len(d)) >= 0.1 for d in p1_deltas(done, S, B).values())

    rows, later = [], []
    for seed in S['seeds']:
        if not ro and p1_decided(rows):
            later.append(seed)
        else:
            rows += p1_seed(seed)
    # 3. EDFs in [0.9 B, B], both grown together a few networks at a time (the samples are a fixed sequence, so
    #    a shorter run trains a prefix of the longer one), so that a run stopped part-way compares equal n
    edf_dirs = {}
    names = [name for name in ('learned', 'manual') if spaces[name] is not None]
    step = max(1, S['edf_n'] // 8)
    for k in ([] if ro else range(step, S['edf_n'] + step, step)):
        for name in names:
            sample_space(spaces[name], edf_data, work / f'edf_{name}', n=min(k, S['edf_n']), epochs=S['edf_epochs'],
                         madds_range=(0.9 * B, B), name=name, progress=True, device=args.device)
    for name in names:
        d = work / f'edf_{name}'
        n_done = len((d / 'design_space.jsonl').read_text().splitlines()) if (d / 'design_space.jsonl').exists() else 0
        if n_done < S['edf_n']:
            pending.append(f'{d} ({n_done}/{S["edf_n"]})')
        if n_done:
            edf_dirs[name] = d
    # 6. P2: the learned space searched again at the P2 budget (so its winner fills [0.9, 1] x 25 M rather than
    #    P1's 12 M), and that winner trained longer with translations and random erasing
    p2 = search_retrain('learned', S['p2_strategy'], 0, P2_MADDS,
                        p2_tag(S), epochs=S['p2_epochs'], erase=True)

    # the side questions, then P1's deferred seeds (they only narrow a gap whose verdict is known; the side
    # questions have no answer yet)
    # 4. reference off: its DARTS winners, paired by seed with the learned space's
    side = S['seeds'][:S['side_seeds']]
    for seed in side:
        rows.append(search_retrain('learned-no-ref', 'darts', seed, B, f'p1_darts_learned-no-ref_seed{seed}'))
    # 5. budget specialisation: both spaces learned at a budget, each searched at both (DARTS, the side seeds)
    for sname in ('learned', 'learned-small'):
        for bname, budget in (('large', B), ('small', S['spec_budget'])):
            for seed in side:
                if sname == 'learned' and bname == 'large':
                    continue   # that is P1's DARTS row
                rows.append(search_retrain(sname, 'darts', seed, budget, f'spec_{sname}_at-{bname}_seed{seed}'))
    for seed in later:
        rows += p1_seed(seed)
    rows = [r for r in rows if r is not None]

    report(args, S, work, spaces, rows, edf_dirs, p2, pending, plot_edfs, mean_error_ci, skeleton)


def report(args, S, work, spaces, rows, edf_dirs, p2, pending, plot_edfs, mean_error_ci, skeleton):
    B = S['budget']
    docs = ROOT / 'docs'
    out_dir = work if args.no_write else docs
    lines = []
    if args.scale == 'smoke':
        lines.append('**Smoke scale: toy sizes that keep the script working; these numbers mean nothing.**\n')
    lines.append(f'Budget B = {B / 1e6:.3g} M MAdds; every search\'s winner must land in [0.9 B, B]. Searches on '
                 f'{S["search_limit"] or "all"} training images; winners retrained {S["retrain_epochs"]} epochs on the '
                 f'full training split (translations), tested once on the official test split. Seeds {S["seeds"]}, the '
                 f'same seed on both spaces; paired tests from scipy.stats.\n')
    lines += ['| algorithm | learned (mean test acc) | manual | Δ (points) | Wilcoxon p | paired t p | pairs | '
              'learned MAdds | manual MAdds |', '|---|---|---|---|---|---|---|---|---|']
    summary = {'p1': {'algorithms': {}}, 'p2': None}
    for strategy in S['strategies']:
        pairs = [(l, m) for l in rows for m in rows
                 if l['strategy'] == m['strategy'] == strategy and l['seed'] == m['seed'] and l['budget'] == m['budget'] == B
                 and l['space'] == 'learned' and m['space'] == 'manual']
        if not pairs:
            lines.append(f'| {strategy} | pending | | | | | 0 | | |')
            continue
        t = paired_test([l['test_acc'] for l, _ in pairs], [m['test_acc'] for _, m in pairs])
        lm, mm = np.mean([l['madds'] for l, _ in pairs]), np.mean([m['madds'] for _, m in pairs])
        la, ma = np.mean([l['test_acc'] for l, _ in pairs]), np.mean([m['test_acc'] for _, m in pairs])
        pw, pt = (f'{p:.3f}' if np.isfinite(p) else 'n/a (too few pairs)' for p in (t['p_wilcoxon'], t['p_ttest']))
        lines.append(f'| {strategy} | {la:.4f} | {ma:.4f} | {100 * t["delta"]:+.2f} | {pw} | {pt} | {t["n"]} | '
                     f'{lm / 1e6:.2f} M | {mm / 1e6:.2f} M |')
        summary['p1']['algorithms'][strategy] = {'learned_mean': float(la), 'manual_mean': float(ma),
                                                 'delta': t['delta'],
                                                 # null, not NaN (invalid JSON), while too few pairs to test
                                                 'p_value': t['p_wilcoxon'] if np.isfinite(t['p_wilcoxon']) else None,
                                                 'learned_madds': float(lm), 'manual_madds': float(mm), 'seeds': t['n']}
    algos = summary['p1']['algorithms']
    ok = [a for a, v in algos.items() if v['delta'] >= 0.003 and v['p_value'] is not None and v['p_value'] < 0.1]
    complete = all(algos.get(a, {}).get('seeds') == len(S['seeds']) for a in S['strategies'])
    # the best Wilcoxon p each algorithm can still reach: at or above 0.1 its pending seeds cannot meet the goal
    best = {a: best_case_p(d, len(S['seeds']) - len(d)) for a, d in p1_deltas(rows, S, B).items()}
    hopeless = [a for a, p in best.items() if p >= 0.1]
    verdict = ('met' if len(ok) == len(S['strategies']) else 'NOT met' if complete or hopeless else
               'undecided: pairs still pending')
    lines.append(f'\nGoal P1 (≥ +0.3 points with paired p < 0.1, both algorithms): '
                 f'**{verdict}** (met so far by: {", ".join(ok) or "none"}).')
    if not complete:
        lines.append('\nThe smallest Wilcoxon p the pending seeds still allow (each pending pair won by the learned '
                     'space, by more than any pair so far): ' + ', '.join(f'{a} {p:.3f}' for a, p in best.items()) +
                     (f'. For {", ".join(hopeless)} that is at or above 0.1, so no remaining seed can meet the goal; '
                      'the remaining P1 seeds run last (after the EDFs, P2 and the side questions), and only '
                      'narrow the gap\'s estimate.'
                      if hopeless else '.'))
    # what the winners are made of (a space of pricier cells fills the budget with fewer blocks), and whether the
    # estimator rates the learned space's multi-edge cells as it should (the fitness-quality benchmark's cache)
    from benchmarks._anatomy import estimator_bias, why_lines
    lines += why_lines(spaces, {n: [r for r in rows if r['space'] == n and r['budget'] == B]
                                for n in ('learned', 'manual')},
                       estimator_bias(ROOT / ('runs' if args.scale == 'smoke' else 'docs/results') /
                                      f'fitness_quality_{args.scale}'))
    # what each evolution learned
    from autospace_nni.search import cost_range
    lines.append('\nMAdds of the cheapest and the priciest network in each space: ' + '; '.join(
        f'{name} {lo / 1e6:.2f}-{hi / 1e6:.2f} M' for name, (lo, hi) in
        ((n, cost_range(sp)) for n, sp in spaces.items() if sp is not None)) + '.')
    for name, tag in (('learned', 'with the reference'), ('learned-no-ref', 'without the reference'),
                      ('learned-small', f'at {S["spec_budget"] / 1e6:.3g} M MAdds')):
        space = spaces.get(name)
        if space is None:
            continue
        cells = [c for cs in space.groups.values() for c in cs if not c.reference]
        fits = [c.fitness for c in cells]
        lines.append(f'\nLearned space `{name}` ({tag}): {len(cells)} cells over {len(space.groups)} groups, fitness '
                     f'{min(fits):.3f}-{max(fits):.3f} (1 = as good as the reference), '
                     f'{np.mean([c.cell.expand == 1 for c in cells]):.0%} with expand ratio 1, '
                     f'{space.provenance.get("iterations")} iterations.')
    # EDFs with bands
    if len(edf_dirs) == 2:
        png = out_dir / f'space_quality_{args.scale}_edf.png'
        edf_rows = plot_edfs([edf_dirs['learned'], edf_dirs['manual']], png, bands=True, boot=S['boot'] // 2)
        lines += ['', '| space | EDF n | mean error (90% CI) | best error | MAdds range |', '|---|---|---|---|---|']
        lines += [f'| {r["space"]} | {r["n"]} | {r["mean_error"]:.4f} [{r["mean_error_ci"][0]:.4f}, '
                  f'{r["mean_error_ci"][1]:.4f}] | {r["min_error"]:.4f} | {r["madds_min"] / 1e6:.2f}-'
                  f'{r["madds_max"] / 1e6:.2f} M |' for r in edf_rows]
        from autospace_nni.design_space import load_samples
        edf_samples = {n: load_samples(d) for n, d in edf_dirs.items()}
        el, em = (np.array([r['error'] for r in edf_samples[n]]) for n in ('learned', 'manual'))
        rs = np.random.RandomState(0)
        diffs = [el[rs.randint(0, len(el), len(el))].mean() - em[rs.randint(0, len(em), len(em))].mean()
                 for _ in range(S['boot'])]
        lo, hi = np.percentile(diffs, [5, 95])
        lines.append(f'\nMean error learned − manual: {el.mean() - em.mean():+.4f}, 90% bootstrap interval '
                     f'[{lo:+.4f}, {hi:+.4f}]; the learned EDF lies left of the manual one outside the bands: '
                     f'**{"yes" if hi < 0 else "no"}**. ![error EDFs]({png.name})')
        from benchmarks._anatomy import edf_why_lines
        lines += edf_why_lines(edf_samples)
    # reference on / off
    hist = {}
    for ref in ('default', 'none'):
        f = work / f'evolve_ref-{ref}' / 'history.jsonl'
        hist[ref] = [json.loads(l) for l in f.read_text().splitlines()] if f.exists() else None
    if all(hist.values()):
        ca, cn = convergence(hist['default']), convergence(hist['none'])
        pairs = [(l, m) for l in rows for m in rows if l['strategy'] == m['strategy'] == 'darts' and l['seed'] == m['seed']
                 and l['budget'] == m['budget'] == B and l['space'] == 'learned' and m['space'] == 'learned-no-ref']
        t = paired_test([l['test_acc'] for l, _ in pairs], [m['test_acc'] for _, m in pairs])
        winners = (f'{100 * t["delta"]:+.2f} points (Wilcoxon p {t["p_wilcoxon"]:.3f}, {t["n"]} pairs)' if pairs else
                   'pending')

        def stable(c):
            return f'never in {len(hist["default"])} iterations' if c is None else f'from iteration {c}'
        lines.append(f'\nReference on vs off: all top-M sets stable for 3 iterations: with the reference {stable(ca)}, '
                     f'without it {stable(cn)}; DARTS winners, with − without: {winners}.')
    # budget specialisation
    spec = {}
    for r in rows:
        if r['strategy'] == 'darts' and r['space'] in ('learned', 'learned-small') and r['seed'] in S['seeds'][:S['side_seeds']]:
            spec.setdefault((r['space'], 'large' if r['budget'] == B else 'small'), []).append(r)
    if spec:
        lines += ['', f'Budget specialisation (DARTS, seeds {S["seeds"][:S["side_seeds"]]}): spaces learned at {B / 1e6:.3g} M and '
                      f'{S["spec_budget"] / 1e6:.3g} M, each searched at both; mean test accuracy (mean MAdds).', '',
                  '| space learned at | searched at large | searched at small |', '|---|---|---|']
        for sname in ('learned', 'learned-small'):
            cells = [spec.get((sname, b)) for b in ('large', 'small')]
            lines.append(f'| {"large" if sname == "learned" else "small"} | ' + ' | '.join(
                'pending' if not c else f'{np.mean([r["test_acc"] for r in c]):.4f} '
                                        f'({np.mean([r["madds"] for r in c]) / 1e6:.2f} M)' for c in cells) + ' |')
    # Pareto plot
    if rows:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for name, marker in (('learned', 'o'), ('manual', 's'), ('learned-no-ref', '^'), ('learned-small', 'v')):
            rs_ = [r for r in rows if r['space'] == name]
            if rs_:
                ax.scatter([r['madds'] / 1e6 for r in rs_], [r['test_acc'] for r in rs_], marker=marker, label=name,
                           alpha=0.8)
        if p2 is not None:
            ax.scatter([p2['madds'] / 1e6], [p2['test_acc']], marker='*', s=120, color='k',
                       label=f'P2 ({p2["retrain_epochs"]} epochs)')
        ax.axvline(B / 1e6, color='grey', ls='--', lw=0.8)
        ax.set_xlabel('MAdds (M)')
        ax.set_ylabel('test accuracy')
        ax.set_title('Retrained search winners', fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        pareto = out_dir / f'space_quality_{args.scale}_pareto.png'
        fig.savefig(pareto, dpi=120)
        plt.close(fig)
        lines.append(f'\n![accuracy against MAdds]({pareto.name})')
    if p2 is not None:
        summary['p2'] = {'best_test_acc': p2['test_acc'], 'madds': p2['madds'], 'params': p2['params'],
                         'arch': json.dumps(p2['sample'], sort_keys=True)}
        lines.append(f'\nGoal P2 (≥ 0.955 test accuracy at ≤ 25 M MAdds): the learned space searched with '
                     f'{p2["strategy"]} at {P2_MADDS / 1e6:.3g} M MAdds (seed {p2["seed"]}), its winner retrained '
                     f'{p2["retrain_epochs"]} epochs with translations and random erasing: {p2["test_acc"]:.4f} test '
                     f'accuracy ({p2["val_acc"]:.4f} held-out) at {p2["madds"] / 1e6:.2f} M MAdds, '
                     f'{p2["params"] / 1e6:.2f} M params → **{"met" if p2["test_acc"] >= 0.955 else "NOT met"}**.')
    else:
        tag = work / p2_tag(S)
        from autospace_nni.retrain import progress
        rec = json.loads((tag / 'search.json').read_text()) if (tag / 'search.json').exists() else None
        done, so_far = progress(tag / 'retrain.ckpt'), ''
        if rec and done:
            so_far = (f'; the search is done (winner {rec["madds"] / 1e6:.2f} M MAdds, {rec["params"] / 1e3:.0f} k '
                      f'params) and its retrain has run {done["epochs"]} of {S["p2_epochs"]} epochs '
                      f'({done["wall_s"] / 3600:.1f} h; held-out accuracy after epoch ' +
                      ', '.join(f'{h["epoch"] + 1}: {h["val_acc"]:.4f}' for h in done['history'][-6:]) + ')')
        lines.append(f'\nGoal P2 (≥ 0.955 test accuracy at ≤ 25 M MAdds): pending (a search of the learned space at '
                     f'{P2_MADDS / 1e6:.3g} M MAdds, its winner trained {S["p2_epochs"]} epochs){so_far}.')
    if pending:
        lines.append(f'\nPending ({len(pending)} units not yet run): ' + ', '.join(Path(p).parent.name if p.endswith('.json')
                                                                                 else Path(p.split(' ')[0]).name
                                                                                 for p in pending[:12])
                     + (' ...' if len(pending) > 12 else ''))
    (work / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    body = '\n'.join(lines)
    print(body)
    if not args.no_write:
        from benchmarks._report import write_section
        write_section(f'Space quality ({args.scale})', f'python benchmarks/space_quality.py --scale {args.scale}', body)


if __name__ == '__main__':
    main()
