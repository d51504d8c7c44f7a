"""The ask/tell evolution loop, driven without torch: a synthetic fitness with a known answer, the phases
(warm-up, main, finals), convergence, and resume from its state_dict."""

import ast
import json
from pathlib import Path

import pytest

from autospace_nni.cells import Cell
from autospace_nni.strategy.evolution import CellSampler
from autospace_nni.strategy.loop import EvolutionLoop

ROOT = Path(__file__).resolve().parent.parent
REF = Cell.parse('e6_relu6:0-1=dw3x3')


def _score(cell: Cell) -> float:
    # a known answer: cells with more dw5x5 edges score higher (r > 1 beats the reference)
    return 1.0 + 0.1 * sum(op == 'dw5x5' for _, _, op in cell.edges) - 0.01 * cell.n_nodes


def _loop(**kw):
    opts = dict(population_size=16, sample_k=3, tournament_size=4, top_m=3, iterations=10, warmup_iterations=2,
                final_iterations=1, patience=0, seed=0, sampler=CellSampler(ops=('dw3x3', 'dw5x5', 'skip')))
    loop = EvolutionLoop(**{**opts, **kw})
    for g in ('s1', 's2'):
        loop.add_group(g, references=[REF])
    return loop


def _run(loop, n=None):
    records = []
    while not loop.finished and (n is None or len(records) < n):
        asked = loop.ask()
        records.append(loop.tell({g: {c.key: _score(c) for c in cells} for g, cells in asked.items()},
                                 val_acc=0.5))
    return records


def test_phases_and_the_known_answer():
    loop = _loop()
    records = _run(loop)
    assert len(records) == 10 and loop.finished                     # T iterations, finals included
    assert [r['warmup'] for r in records] == [True, True] + [False] * 8
    assert [r['final'] for r in records] == [False] * 9 + [True]
    assert all('scores/s1' not in r for r in records[:2])           # warm-up scores are ignored
    for g in ('s1', 's2'):
        assert REF.key not in {c.key for c in loop.ask().get(g, [])}   # the reference is never a pick
        assert records[-1][f'scores/{g}'][REF.key] == 1.0           # ... and always scores 1
        learned = loop.learned(g)
        assert len(learned) == 3 and all(m.key != REF.key for m in learned)
        # the synthetic fitness is noiseless: the learned cells are the best the group scored
        scored = {m.key: _score(m.cell) for m in loop.populations[g].members if m.evals}
        assert min(_score(m.cell) for m in learned) >= sorted(scored.values())[-3] - 1e-12


def test_convergence_ends_the_main_phase_then_the_finals_run():
    loop = _loop(patience=1, iterations=40, sample_k=2, p_mutation=0.0, population_size=4)
    records = _run(loop)
    stop = next(i for i, r in enumerate(records) if r['converged'])
    assert records[stop]['stable_iterations'] >= 1 and stop < 39
    assert len(records) == stop + 2 and records[-1]['final']        # one final iteration after it


def test_state_dict_round_trip_resumes_identically():
    straight = _loop()
    full = _run(straight)
    first = _loop()
    _run(first, 4)
    state = json.loads(json.dumps(first.state_dict()))              # plain JSON types
    resumed = _loop(seed=123)                                       # the state, not the seed, decides
    resumed.load_state_dict(state)
    rest = _run(resumed)
    assert json.dumps(resumed.history, sort_keys=True) == json.dumps(straight.history, sort_keys=True)
    assert len(rest) == len(full) - 4
    for g in ('s1', 's2'):
        assert [str(m.cell) for m in resumed.learned(g)] == [str(m.cell) for m in straight.learned(g)]


@pytest.mark.parametrize('module', ['loop.py', 'evolution.py'])
def test_the_evolution_knows_no_torch(module):
    tree = ast.parse((ROOT / 'autospace_nni' / 'strategy' / module).read_text())
    imported = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {'torch', 'pytorch_lightning', 'lightning', 'nni'}
