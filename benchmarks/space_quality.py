"""Is the learned space better than the hand-made one?

    .venv/bin/python benchmarks/space_quality.py --scale smoke|cpu|gpu [--work DIR]

--work defaults to runs/space_quality_smoke for smoke and docs/results/space_quality_<scale> otherwise.

Protocol (every step is cached in --work, so a killed run resumes where it stopped):

1. Evolve a learned space with the reference architecture and one without (the paper's ablation); record
   the iteration at which each run's top-M sets became stable (convergence).
2. Search the learned space and the ManualSpace with the same NAS algorithms (one one-shot: DARTS; one
   multi-trial: RegularizedEvolution through NNI's training service), the same budget, data and seed;
   retrain each winner with the same recipe; repeat for every seed. The test split is touched only by the
   final retrain.
3. Design-space check: n random architectures per space at matched MAdds, trained briefly; error EDFs (test
   error, as RegNet's EDFs: each network is measured once and nothing is chosen on it).
4. Budget specialisation: spaces learned at a small and a large budget, each searched (DARTS, seed 0) at
   both budgets and retrained; does each space win at its own budget?
5. α step size: the with-reference evolution again at a larger architecture learning rate (``arc_lr_alt``),
   its cells' fitness spread and its EDF beside the others. Eqn 5 can only rank cells as far as α moves in an
   iteration, so this checks whether a weak fitness signal, rather than the method, limits the learned space.

``smoke`` runs in CI at toy size (digits, tiny-8) so the script cannot rot; its numbers mean nothing.
``cpu`` is Fashion-MNIST / mobile-28 sized for a few hours on 2 cores; ``gpu`` is larger, for a GPU machine.
Results go to docs/benchmarks.md ("Space quality (<scale>)") with the EDF plot beside it.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCALES = {
    'smoke': dict(dataset='digits', skeleton='tiny-8', iterations=3, population=8, sample_k=2, budget=3.5e5,
                  search_epochs=1, trials=2, trial_epochs=1, retrain_epochs=1, seeds=[0], edf_n=3, edf_epochs=1,
                  limit=400, strategies=['darts', 'random'], spec_budgets=(2.5e5, 4.5e5), arc_lr_alt=0.1),
    # sized from measured costs on 2 cores (a mobile-28 supernet step, K=4 + reference, batch 64: ~5 s): about
    # 13 min per evolution, 2-3 min per DARTS search, ~3 h in all. Small data, so absolute accuracies are low.
    'cpu': dict(dataset='fashion-mnist', skeleton='mobile-28', iterations=10, population=16, sample_k=4,
                budget=12e6, search_epochs=1, trials=8, trial_epochs=1, retrain_epochs=3, seeds=[0, 1, 2],
                edf_n=20, edf_epochs=1, limit=4000, strategies=['darts', 'evolution'], spec_budgets=(6e6, 18e6),
                arc_lr_alt=1e-2),
    'gpu': dict(dataset='fashion-mnist', skeleton='mobile-28', iterations=40, population=64, sample_k=4,
                budget=12e6, search_epochs=10, trials=30, trial_epochs=3, retrain_epochs=30, seeds=[0, 1, 2],
                edf_n=50, edf_epochs=3, limit=None, strategies=['darts', 'evolution'], spec_budgets=(6e6, 18e6),
                arc_lr_alt=1e-2),
}


def _learn(S, out: Path, device: str, **changes):
    """The space learned into ``out`` with the scale's settings (plus ``changes``), evolving it first unless it
    is there; a killed evolution continues from its checkpoint."""
    from autospace_nni.pipeline import EvolveConfig, run_evolve
    from autospace_nni.space.learned import LearnedSpace
    from autospace_nni.strategy.autospace import AutoSpace
    if not (out / 'learned_space.json').exists():
        settings = dict(dataset=S['dataset'], skeleton=S['skeleton'], iterations=S['iterations'],
                        population=S['population'], sample_k=S['sample_k'], seed=0, reference='default',
                        budget_madds=S['budget'], patience=0, limit=S['limit'], device=device)
        cfg = EvolveConfig(**{**settings, **changes})
        resume = (out / 'checkpoints').is_dir() and AutoSpace.find_checkpoint(out / 'checkpoints') is not None
        run_evolve(cfg, out, overwrite=not resume, resume=resume, progress=True)
    return LearnedSpace.load(out / 'learned_space.json')


def _cached(path: Path, make):
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, default=float) + '\n')
    return value


def _convergence(history, top_m_stable_for=3):
    """First iteration after which the top-M sets stayed unchanged ``top_m_stable_for`` iterations."""
    for h in history:
        if h.get('stable_iterations', 0) >= top_m_stable_for:
            return h['iteration'] - top_m_stable_for + 1
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--scale', choices=list(SCALES), default='smoke')
    ap.add_argument('--work', default=None, help='cache folder (default runs/space_quality_smoke, docs/results/space_quality_<scale>)')
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--port', type=int, default=8761)
    ap.add_argument('--no-write', action='store_true', help='do not touch docs/benchmarks.md')
    args = ap.parse_args()
    S = SCALES[args.scale]
    # cpu/gpu results live in the repository, so a run spread over several sessions keeps its finished steps
    # (checkpoints, TensorBoard logs and NNI experiment folders are git-ignored)
    default_work = ROOT / ('runs' if args.scale == 'smoke' else 'docs/results') / f'space_quality_{args.scale}'
    work = Path(args.work or default_work)
    work.mkdir(parents=True, exist_ok=True)

    from autospace_nni.cli import _quiet_nni_warnings
    _quiet_nni_warnings()
    from autospace_nni.data import load_dataset
    from autospace_nni.design_space import plot_edfs, sample_space
    from autospace_nni.pipeline import quiet_libraries
    from autospace_nni.retrain import retrain
    from autospace_nni.search import run_search
    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.network import Architecture
    from autospace_nni.space.skeleton import Skeleton
    quiet_libraries()
    data = load_dataset(S['dataset'], seed=0, limit=S['limit'])
    skeleton = Skeleton.preset(S['skeleton'])

    # 1. evolve, with and without the reference
    evolved = {}
    for ref in ('default', 'none'):
        out = work / f'evolve_ref-{ref}'
        space = _learn(S, out, args.device, reference=None if ref == 'none' else 'default')
        hist = [json.loads(l) for l in (out / 'history.jsonl').read_text().splitlines()]
        evolved[ref] = {'space': space, 'converged_at': _convergence(hist), 'iterations': len(hist), 'history': hist}
    spaces = {'learned': evolved['default']['space'], 'manual': manual_space(skeleton)}

    # 2. search both spaces with each algorithm and seed, retrain the winners
    rows = []
    for strategy in S['strategies']:
        for name, space in spaces.items():
            for seed in S['seeds']:
                tag = f'{strategy}_{name}_seed{seed}'

                def search_and_retrain():
                    rec = run_search(space, strategy, data, budget_madds=S['budget'], epochs=S['search_epochs'],
                                     seed=seed, trials=S['trials'], trial_epochs=S['trial_epochs'],
                                     port=args.port, out_dir=work / tag, dataset_name=S['dataset'],
                                     limit=S['limit'], device=args.device)
                    m = retrain(Architecture(skeleton, rec['sample']), data, epochs=S['retrain_epochs'], seed=seed,
                                augment=args.scale != 'smoke', device=args.device)
                    return {'strategy': strategy, 'space': name, 'seed': seed, 'madds': rec['madds'],
                            'params': rec['params'], 'test_acc': m['test_acc'], 'sample': rec['sample']}
                rows.append(_cached(work / tag / 'result.json', search_and_retrain))

    # 5 (run before the plot, so its EDF joins the others). The with-reference evolution at a larger α step
    alt_name = f'learned-arc-lr-{S["arc_lr_alt"]:g}'
    alt_space = _learn(S, work / f'evolve_arc-lr-{S["arc_lr_alt"]:g}', args.device, arc_lr=S['arc_lr_alt'])

    # 3. design-space EDFs at matched MAdds (around the budget)
    lo, hi = 0.7 * S['budget'], 1.0 * S['budget']
    edf_spaces = {**spaces, alt_name: alt_space}
    for name, space in edf_spaces.items():
        sample_space(space, data, work / f'edf_{name}', n=S['edf_n'], epochs=S['edf_epochs'], madds_range=(lo, hi),
                     name=name, progress=True, device=args.device)
    docs = ROOT / 'docs'
    png = docs / f'space_quality_{args.scale}_edf.png' if not args.no_write else work / 'edf.png'
    edf_rows = plot_edfs([work / f'edf_{name}' for name in edf_spaces], png)

    # 4. budget specialisation: a space learned at each of two budgets, each searched at both (DARTS, seed 0)
    spec_budgets = dict(zip(('small', 'large'), S['spec_budgets']))
    spec_spaces = {bname: _learn(S, work / f'evolve_budget-{bname}', args.device, budget_madds=budget)
                   for bname, budget in spec_budgets.items()}
    spec = {}
    for sname, space in spec_spaces.items():
        for bname, budget in spec_budgets.items():
            tag = f'spec_space-{sname}_budget-{bname}'

            def spec_search(space=space, budget=budget, tag=tag):
                rec = run_search(space, 'darts', data, budget_madds=budget, epochs=S['search_epochs'], seed=0,
                                 out_dir=work / tag, dataset_name=S['dataset'], limit=S['limit'], device=args.device)
                m = retrain(Architecture(skeleton, rec['sample']), data, epochs=S['retrain_epochs'], seed=0,
                            augment=args.scale != 'smoke', device=args.device)
                return {'madds': rec['madds'], 'params': rec['params'], 'test_acc': m['test_acc'], 'sample': rec['sample']}
            spec[(sname, bname)] = _cached(work / tag / 'result.json', spec_search)

    # report
    lines = ['| algorithm | space | test accuracy (mean ± std over seeds) | MAdds (mean) | params (mean) |',
             '|---|---|---|---|---|']
    summary = {}
    for strategy in S['strategies']:
        for name in spaces:
            rs = [r for r in rows if r['strategy'] == strategy and r['space'] == name]
            acc = np.array([r['test_acc'] for r in rs])
            summary[(strategy, name)] = acc.mean()
            lines.append(f'| {strategy} | {name} | {acc.mean():.4f} ± {acc.std():.4f} (n={len(acc)}) | '
                         f'{np.mean([r["madds"] for r in rs]) / 1e6:.3f} M | {np.mean([r["params"] for r in rs]) / 1e6:.3f} M |')
    gaps = {s: summary[(s, 'learned')] - summary[(s, 'manual')] for s in S['strategies']}
    lines += ['', '| space | EDF n | mean error | best error | MAdds range |', '|---|---|---|---|---|']
    lines += [f'| {r["space"]} | {r["n"]} | {r["mean_error"]:.4f} | {r["min_error"]:.4f} | '
              f'{r["madds_min"] / 1e6:.3f}-{r["madds_max"] / 1e6:.3f} M |' for r in edf_rows]
    ratios = {s: np.mean([r['madds'] for r in rows if r['strategy'] == s and r['space'] == 'learned']) /
              np.mean([r['madds'] for r in rows if r['strategy'] == s and r['space'] == 'manual']) for s in S['strategies']}
    lines += ['', 'The budget is an upper bound, so the winners need not spend it: mean MAdds of the learned-space '
                  'winners / the manual-space winners: ' + ', '.join(f'{s} {r:.2f}x' for s, r in ratios.items()) +
              '. The EDFs below compare the two spaces at matched MAdds.']
    ca, cn = evolved['default']['converged_at'], evolved['none']['converged_at']
    churn = {ref: [sum(v for k, v in h.items() if k.startswith('churn/')) for h in evolved[ref]['history']]
             for ref in ('default', 'none')}
    def describe(space):
        fit = [c.fitness for cs in space.groups.values() for c in cs]
        e1 = np.mean([getattr(c.cell, 'expand', None) == 1 for cs in space.groups.values() for c in cs])
        arc_lr = space.provenance.get('options', {}).get('arc_learning_rate')
        return (f'arc_lr {arc_lr:g}: fitness of its {len(fit)} cells spans {min(fit):.3f}-{max(fit):.3f}; '
                f'{100 * e1:.0f}% have expand ratio 1')
    lines += ['', f'Learned space (with reference, {describe(spaces["learned"])}; Eqn 5: 1 = as good as the '
                  f'reference). The same evolution at a larger α step (`{alt_name}` in the EDFs, {describe(alt_space)}).']
    lines += ['', f'Convergence (top-M stable for 3 iterations): with reference at iteration {ca}, without at {cn} '
                  f'(of {evolved["default"]["iterations"]}). Cells entering the top-M sets per iteration (all groups): '
                  f'with reference {churn["default"]}, without {churn["none"]}.', '',
              'Goals: learned beats manual by ≥ 0.3 points with both algorithms: ' +
              ', '.join(f'{s} {100 * g:+.2f} points ({"met" if g >= 0.003 else "NOT met"})' for s, g in gaps.items()) +
              f'; reference converges ≥ 1.5x faster: ' +
              ('met' if ca and cn and cn >= 1.5 * ca else 'NOT met' if ca and cn else 'undecided (a run did not converge)') +
              '.', '', f'![error EDFs]({png.name})' if not args.no_write else '']
    best = max((r for r in rows if r['madds'] <= 25e6), key=lambda r: r['test_acc'], default=None)
    if best is not None:
        lines += ['', f'Best retrained network at ≤ 25 M MAdds: {best["test_acc"]:.4f} test accuracy ({best["strategy"]}, '
                      f'{best["space"]} space, seed {best["seed"]}, {best["madds"] / 1e6:.2f} M MAdds); goal ≥ 0.955: '
                      f'{"met" if best["test_acc"] >= 0.955 else "NOT met"}.']
    lines += ['', f'Budget specialisation (DARTS, seed 0): spaces learned at {spec_budgets["small"] / 1e6:.3g} M and '
                  f'{spec_budgets["large"] / 1e6:.3g} M MAdds, each searched at both budgets; test accuracy (MAdds).', '',
              '| space learned at | searched at small | searched at large |', '|---|---|---|']
    for sname in spec_spaces:
        lines.append(f'| {sname} | ' + ' | '.join(f'{spec[(sname, b)]["test_acc"]:.4f} ({spec[(sname, b)]["madds"] / 1e6:.3f} M)'
                                                 for b in spec_budgets) + ' |')
    wins = {b: spec[(b, b)]['test_acc'] > spec[(other, b)]['test_acc']
            for b, other in (('small', 'large'), ('large', 'small'))}
    lines += ['', 'Goal: each space wins at its own budget: ' +
              ', '.join(f'{b} budget {"met" if w else "NOT met"}' for b, w in wins.items()) + '.']
    if args.scale == 'smoke':
        lines.insert(0, '**Smoke scale: toy sizes that keep the script working; these numbers mean nothing.**\n')
    body = '\n'.join(lines)
    print(body)
    if not args.no_write:
        from benchmarks._report import write_section
        write_section(f'Space quality ({args.scale})', f'python benchmarks/space_quality.py --scale {args.scale}', body)


if __name__ == '__main__':
    main()
