"""``autospace-nni report RUN_DIR``: one HTML page with PNG figures that explains an evolve run without logs.

Reads what ``evolve`` wrote (run.json, history.jsonl, learned_space.json) plus any ``arch.json`` /
``metrics.json`` of searches and retrains found under the run folder, and writes ``RUN_DIR/report.html``
and ``RUN_DIR/report/*.png``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import List

from .errors import AutoSpaceError

__all__ = ['write_report', 'draw_cell']


class ReportError(AutoSpaceError):
    """The run folder lacks what the report needs."""


def _load_run(run_dir: Path):
    if not (run_dir / 'history.jsonl').exists():
        raise ReportError(f'{run_dir} holds no evolve run (no history.jsonl); give the --out folder of '
                          f'`autospace-nni evolve`')
    history = []
    for i, line in enumerate((run_dir / 'history.jsonl').read_text().splitlines(), 1):
        if line.strip():
            try:
                history.append(json.loads(line))
            except json.JSONDecodeError:
                raise ReportError(f'{run_dir}/history.jsonl line {i} is not JSON (a run killed mid-write? '
                                  f'`evolve --resume` rewrites it)') from None
    if not history:
        raise ReportError(f'{run_dir}/history.jsonl is empty: the run has not finished an iteration yet')
    run = json.loads((run_dir / 'run.json').read_text()) if (run_dir / 'run.json').exists() else {}
    learned = None
    if (run_dir / 'learned_space.json').exists():
        from .space.learned import LearnedSpace
        learned = LearnedSpace.load(run_dir / 'learned_space.json')
    return run, history, learned


def _groups(history) -> List[str]:
    return [k.split('/', 1)[1] for k in history[0] if k.startswith('fitness_max/')]


def draw_cell(ax, cell, title: str = '') -> None:
    """A cell as a graph: nodes left to right (0 = input, last = output), each edge an arc labelled by op."""
    from matplotlib.patches import FancyArrowPatch
    n = cell.n_nodes
    xs = list(range(n))
    for i in xs:
        ax.scatter([i], [0], s=520, color='#dbe9f6' if 0 < i < n - 1 else '#f6d8b8', edgecolor='#345', zorder=3)
        ax.text(i, 0, 'in' if i == 0 else 'out' if i == n - 1 else str(i), ha='center', va='center', fontsize=8,
                zorder=4)
    for k, (a, b, op) in enumerate(sorted(cell.edges)):
        span = b - a
        rad = -0.35 if k % 2 == 0 else 0.35
        rad = rad * (1 if span > 1 else 0.6)
        ax.add_patch(FancyArrowPatch((a, 0), (b, 0), connectionstyle=f'arc3,rad={rad}', arrowstyle='-|>',
                                     mutation_scale=10, color='#456', lw=1.1, shrinkA=11, shrinkB=11))
        y = -rad * span * 0.5
        ax.text((a + b) / 2, y, op, ha='center', va='center', fontsize=7,
                bbox=dict(boxstyle='round,pad=0.15', fc='white', ec='none', alpha=0.9))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.25 * n - 0.3, 0.25 * n + 0.3)
    ax.axis('off')
    genes = f'expand {cell.expand}, {cell.act}' + ((', SE' + ('' if cell.se_style == 'exp' else f' ({cell.se_style})')) if cell.se else '')
    ax.set_title(f'{title}\n{genes}' if title else genes, fontsize=8)


def _fig_fitness(history, groups, learned, path):
    import matplotlib.pyplot as plt
    cols = min(3, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        its = [h['iteration'] for h in history]
        ax.plot(its, [h[f'fitness_max/{g}'] for h in history], color='#999', lw=1, ls=':', label='population max')
        ax.plot(its, [h[f'fitness_mean/{g}'] for h in history], color='#bbb', lw=1, ls='--', label='population mean')
        top = [c for c in (learned.groups[g] if learned else []) if not c.reference][:3]
        for rank, c in enumerate(top, 1):
            text = str(c.cell)
            pts = [(h['iteration'], h['fitness'][g][text]) for h in history if text in h.get('fitness', {}).get(g, {})]
            if pts:
                ax.plot(*zip(*pts), marker='o', ms=3, label=f'#{rank} (final {c.fitness:.3f})')
        ax.axhline(1.0, color='#c33', lw=1, label='reference (r = 1)')
        ax.set_title(g, fontsize=10)
        ax.set_xlabel('iteration')
        ax.set_ylabel('fitness')
        ax.legend(fontsize=7, loc='best')
    for ax in list(axes.flat)[len(groups):]:
        ax.axis('off')
    fig.suptitle('Fitness over iterations: the final top cells of each layer group against the reference', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_diversity(history, groups, path):
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4))
    its = [h['iteration'] for h in history]
    for g in groups:
        a1.plot(its, [h[f'diversity/{g}'] for h in history], marker='.', label=g)
        a2.plot(its, [h[f'churn/{g}'] for h in history], marker='.', label=g)
    a1.set_title('population diversity (distinct cells)', fontsize=10)
    a2.set_title('top-M churn (cells new to the top-M)', fontsize=10)
    for a in (a1, a2):
        a.set_xlabel('iteration')
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_madds(history, budget, path):
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4))
    its = [h['iteration'] for h in history]
    a1.plot(its, [h['expected_madds'] / 1e6 for h in history], marker='o', ms=3, label='E[MAdds] under softmax(α)')
    if budget:
        a1.axhline(budget / 1e6, color='#c33', ls='--', label=f'budget {budget / 1e6:.3g} M')
    a1.set_ylabel('M MAdds')
    a1.set_title('expected cost of the supernet', fontsize=10)
    a2.plot(its, [h['val_acc'] for h in history], marker='o', ms=3, color='#284')
    warm = [h['iteration'] for h in history if h.get('warmup')]
    if warm:
        a2.axvspan(min(warm) - 0.5, max(warm) + 0.5, color='#eee', label='warm-up (α frozen)')
        a2.legend(fontsize=7)
    a2.set_ylabel('accuracy')
    a2.set_title('supernet accuracy on the held-out split', fontsize=10)
    for a in (a1, a2):
        a.set_xlabel('iteration')
    a1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_cells(learned, path, per_group: int = 3):
    import matplotlib.pyplot as plt
    groups = list(learned.groups)
    fig, axes = plt.subplots(len(groups), per_group, figsize=(4.2 * per_group, 2.6 * len(groups)), squeeze=False)
    for row, g in zip(axes, groups):
        cells = learned.groups[g][:per_group]
        for ax, c in zip(row, cells):
            draw_cell(ax, c.cell, f'{g}  f={c.fitness:.3f}' + (' (reference)' if c.reference else ''))
        for ax in row[len(cells):]:
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_costs(learned, searched, path):
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for g in learned.groups:
        rows = [r for r in learned.table() if r['group'] == g]
        a1.scatter([r['madds'] / 1e3 for r in rows], [r['fitness'] for r in rows], label=g, s=22)
    a1.set_xlabel('cell MAdds (K) at its first block')
    a1.set_ylabel('fitness')
    a1.set_title('learned cells: cost against fitness', fontsize=10)
    a1.legend(fontsize=7)
    if searched:
        for s in searched:
            acc = s.get('test_acc', s.get('search_metric'))
            a2.scatter([s['madds'] / 1e6], [acc if isinstance(acc, (int, float)) else float('nan')], s=30)
            a2.annotate(s['name'], (s['madds'] / 1e6, acc if isinstance(acc, (int, float)) else 0), fontsize=7)
        a2.set_xlabel('network MAdds (M)')
        a2.set_ylabel('accuracy')
        a2.set_title('searched / retrained networks', fontsize=10)
    else:
        a2.text(0.5, 0.5, 'no search or retrain results under this run yet\n'
                '(autospace-nni search --out RUN_DIR/search ...)', ha='center', va='center', fontsize=9)
        a2.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _searched(run_dir: Path) -> List[dict]:
    out = []
    for arch in sorted(run_dir.rglob('arch.json')):
        try:
            rec = json.loads(arch.read_text())
        except (json.JSONDecodeError, OSError):
            continue
        if 'madds' not in rec:
            continue
        item = {'name': str(arch.parent.relative_to(run_dir)), 'madds': rec['madds'], 'params': rec.get('params'),
                'strategy': rec.get('strategy'), 'search_metric': rec.get('search_metric')}
        metrics = arch.parent / 'metrics.json'
        if metrics.exists():
            m = json.loads(metrics.read_text())
            item['test_acc'] = m.get('test_acc')
        out.append(item)
    return out


def write_report(run_dir) -> Path:
    """Write ``RUN_DIR/report.html`` (+ ``RUN_DIR/report/*.png``) and return its path."""
    import matplotlib
    matplotlib.use('Agg')
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f'{run_dir} is not a folder')
    run, history, learned = _load_run(run_dir)
    groups = _groups(history)
    figs = run_dir / 'report'
    figs.mkdir(exist_ok=True)
    budget = (learned.budget_madds if learned else None) or run.get('config', {}).get('budget_madds')
    searched = _searched(run_dir)
    _fig_fitness(history, groups, learned, figs / 'fitness.png')
    _fig_diversity(history, groups, figs / 'diversity.png')
    _fig_madds(history, budget, figs / 'madds.png')
    if learned is not None:
        _fig_cells(learned, figs / 'cells.png')
        _fig_costs(learned, searched, figs / 'costs.png')

    cfg = run.get('config', {})
    last = history[-1]
    e = html.escape
    facts = [
        ('dataset', cfg.get('dataset', '?')), ('skeleton', cfg.get('skeleton', '?')),
        ('status', run.get('status', 'unknown')), ('iterations', f'{len(history)}' + (
            f' of {cfg["iterations"]}' if cfg.get('iterations') else '')),
        ('converged', 'yes (top-M stable)' if last.get('converged') else 'no'),
        ('supernet accuracy', f'{last["val_acc"]:.3f} (first {history[0]["val_acc"]:.3f})'),
        ('E[MAdds]', f'{last["expected_madds"] / 1e6:.3f} M' + (f' / budget {budget / 1e6:.3f} M' if budget else '')),
        ('P / K / M', f'{cfg.get("population")} / {cfg.get("sample_k")} / {cfg.get("top_m")}'),
        ('reference', str(cfg.get('reference'))), ('seed', str(cfg.get('seed'))),
        ('wall time', f'{run.get("wall_time_s") or 0:.1f} s'),
    ]
    if run.get('rollbacks'):
        facts.append(('numerical faults', f'{len(run["rollbacks"])} rolled back'))
    parts = [f'<!doctype html><html><head><meta charset="utf-8"><title>AutoSpace run {e(run_dir.name)}</title>',
             '<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}'
             'table{border-collapse:collapse;font-size:13px}td,th{padding:3px 9px;border-bottom:1px solid #ddd;'
             'text-align:left}code{font-size:12px}img{max-width:100%;border:1px solid #eee;margin:6px 0}'
             '.facts td:first-child{color:#666}h2{margin-top:1.6em;border-bottom:2px solid #dbe9f6}</style></head><body>',
             f'<h1>AutoSpace run <code>{e(str(run_dir))}</code></h1>',
             '<table class="facts">' + ''.join(f'<tr><td>{e(k)}</td><td>{e(v)}</td></tr>' for k, v in facts) + '</table>',
             '<h2>Fitness</h2><p>Eqn 5 fitness of each layer group: the cells that ended in the top of the '
             'learned space, the population, and the reference (r = 1 by definition). A cell above the red line '
             'earned more α than the reference architecture while it was sampled.</p>',
             '<img src="report/fitness.png">',
             '<h2>Population</h2><p>Diversity is the number of distinct cells in a population; churn counts cells '
             'that entered the top-M this iteration. The run converges when churn stays at 0.</p>',
             '<img src="report/diversity.png">',
             '<h2>Cost and accuracy</h2><img src="report/madds.png">']
    if learned is not None:
        parts += ['<h2>The learned space</h2><p>The top cells of each group, drawn as graphs (left: input, right: '
                  'output; each arc is one op).</p><img src="report/cells.png">', '<table><tr><th>group</th>'
                  '<th>cell</th><th>fitness</th><th>MAdds</th><th>params</th></tr>']
        for r in learned.table():
            parts.append(f'<tr><td>{e(r["group"])}</td><td><code>{e(r["cell"])}</code>'
                         f'{" (reference)" if r["reference"] else ""}</td><td>{r["fitness"]:.3f}</td>'
                         f'<td>{r["madds"]:,}</td><td>{r["params"]:,}</td></tr>')
        parts.append('</table><h2>What was searched</h2><img src="report/costs.png">')
        if searched:
            parts.append('<table><tr><th>result</th><th>strategy</th><th>MAdds</th><th>params</th>'
                         '<th>test accuracy</th></tr>')
            for s in searched:
                acc = s.get('test_acc')
                parts.append(f'<tr><td>{e(s["name"])}</td><td>{e(str(s["strategy"]))}</td><td>{s["madds"]:,}</td>'
                             f'<td>{s["params"] or 0:,}</td><td>{"" if acc is None else f"{acc:.4f}"}</td></tr>')
            parts.append('</table>')
    else:
        parts.append('<p><b>No learned_space.json yet</b>: the run has not finished (resume it with '
                     '<code>autospace-nni evolve --resume</code>).</p>')
    parts.append('</body></html>')
    out = run_dir / 'report.html'
    tmp = out.with_name('report.html.tmp')
    tmp.write_text('\n'.join(parts))
    tmp.replace(out)
    return out
