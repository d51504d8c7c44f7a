"""One real evolution on digits (tiny-8), as the README's main job runs it: time per iteration, the
learned space, and the fitness trajectories of the final best and worst cells.

    .venv/bin/python benchmarks/evolve_digits.py [--iterations 20] [--seed 0] [--out runs/bench-evolve-digits]

Writes a section of docs/benchmarks.md."""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--iterations', type=int, default=20)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--fitness', default='alpha-sum')
    ap.add_argument('--out', default='runs/bench-evolve-digits')
    args = ap.parse_args()
    import logging
    import warnings
    warnings.filterwarnings('ignore')
    logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)
    from autospace_nni.pipeline import EvolveConfig, PRESETS, run_evolve

    cfg = EvolveConfig.from_flat(**{**PRESETS['tiny-8'], 'iterations': args.iterations, 'seed': args.seed,
                          'fitness': args.fitness, 'patience': 0})
    t0 = time.perf_counter()
    learned, strategy = run_evolve(cfg, args.out, overwrite=True, progress=False)
    wall = time.perf_counter() - t0
    hist = strategy.history
    per_it = learned.provenance['wall_time_s'] / len(hist)

    # trajectories: fitness of the final best and worst scored cell of each group, per iteration
    lines = []
    for g, pop in strategy.populations.items():
        scored = [m for m in pop.ranked() if m.evals > 0 and not m.reference]
        if not scored:
            continue
        best, worst = scored[0], scored[-1]
        for tag, m in (('best', best), ('worst', worst)):
            traj = [h['fitness'].get(g, {}).get(str(m.cell)) for h in hist]
            traj = ' '.join('·' if v is None else f'{v:.2f}' for v in traj)
            lines.append(f'| {g} | {tag} | `{m.cell}` | {m.fitness:.3f} | {traj} |')
    acc = ' '.join(f'{h["val_acc"]:.2f}' for h in hist)
    cmd = (f'python benchmarks/evolve_digits.py --iterations {args.iterations} --seed {args.seed} '
           f'--fitness {args.fitness}')
    table = '\n'.join('    ' + l for l in learned.format_table().splitlines())
    body = (f'tiny-8 on digits, P={cfg.population}, K={cfg.sample_k}, s={cfg.tournament_size}, '
            f'T={args.iterations}, W={cfg.warmup}, α lr {cfg.arc_lr}, batch {cfg.batch_size}, '
            f'fitness {args.fitness}.\n\n'
            f'| figure | value |\n|---|---|\n'
            f'| time per iteration (training only) | {per_it:.2f} s |\n'
            f'| whole command, incl. data and imports | {wall:.1f} s |\n'
            f'| supernet val acc per iteration | {acc} |\n\n'
            f'Learned space:\n\n{table}\n\n'
            f'Fitness trajectories (per iteration; `·` = not yet scored):\n\n'
            f'| group | cell | text | final f | trajectory |\n|---|---|---|---|---|\n' + '\n'.join(lines) + '\n')
    write_section(f'Evolution on digits ({args.fitness})', cmd, body)
    print(body)


if __name__ == '__main__':
    main()
