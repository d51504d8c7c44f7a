"""Learned and manual spaces under NNI's own strategies, with a MAdds budget; export round trips."""

import json
import logging
import socket
import subprocess
import sys
import warnings

import pytest
import torch

from autospace_nni import AutoSpace, ExplorationSpace, Skeleton, load_dataset, make_evaluator
from autospace_nni.budget import AnalyticCostProfiler, BudgetPenalty
from autospace_nni.space.learned import manual_space, MANUAL_CANDIDATES
from autospace_nni.search import STRATEGIES, constrained_export, cost_range, run_search

logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)
warnings.filterwarnings('ignore')
SK = Skeleton.preset('tiny-8')
BUDGET = 400_000      # the reference network (MBConv k3 e6 everywhere) is 482,752 MAdds


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def digits():
    return load_dataset('digits', seed=0)


@pytest.fixture(scope='module')
def spaces(digits):
    torch.manual_seed(0)
    strategy = AutoSpace(population_size=8, sample_k=2, top_m=3, warmup_iterations=1, patience=0, seed=0,
                         arc_learning_rate=0.03)
    learned = strategy.evolve(ExplorationSpace(SK), make_evaluator(digits, max_epochs=3, batch_size=64))
    return {'learned': learned, 'manual': manual_space(SK)}


def test_manual_space_is_the_proxylessnas_space():
    m = manual_space(SK)
    ms = m.model_space()
    simplified = ms.simplify()
    assert set(simplified) == set(SK.labels)
    assert list(simplified['s1_b0'].values) == [f'e{e}_relu6:0-1=dw{k}x{k}' for k, e in MANUAL_CANDIDATES]
    assert list(simplified['s2_b1'].values)[-1] == 'zero' and len(simplified['s2_b1'].values) == 7
    assert m.to_nni_search_space()['s3_b0']['_value'] == list(simplified['s3_b0'].values)


def test_cli_strategy_list_matches():
    from autospace_nni.cli_parser import STRATEGIES as CLI_STRATEGIES
    assert CLI_STRATEGIES == STRATEGIES


@pytest.mark.parametrize('kind', ['manual', 'learned'])
@pytest.mark.parametrize('strategy', ['darts', 'gumbel', 'proxyless', 'spos'])
def test_oneshot_strategies_respect_the_budget(spaces, digits, tmp_path, kind, strategy):
    space = spaces[kind]
    rec = run_search(space, strategy, digits, budget_madds=BUDGET, epochs=2, trials=4, seed=0, out_dir=tmp_path)
    assert set(rec['sample']) == set(SK.labels)
    for spec in SK.blocks():
        assert rec['sample'][spec.label] in space.candidates(spec)
    assert rec['madds'] == space.cost(rec['sample']).madds <= BUDGET
    lo, hi = rec['budget_window']
    assert hi == BUDGET and rec['madds'] >= lo >= 0.9 * min(BUDGET, cost_range(space)[1]) - 1
    assert rec['strategy'] == strategy and rec['budget_madds'] == BUDGET


@pytest.mark.parametrize('kind, strategy, concurrency', [('learned', 'evolution', 2), ('manual', 'random', 2),
                                                         ('manual', 'evolution', 1), ('learned', 'random', 1)])
def test_multi_trial_through_the_nni_manager(spaces, digits, tmp_path, kind, strategy, concurrency):
    space = spaces[kind]
    rec = run_search(space, strategy, digits, budget_madds=BUDGET, trials=3, concurrency=concurrency,
                     port=_free_port(), out_dir=tmp_path, dataset_name='digits', trial_epochs=1, seed=1)
    assert rec['budget_window'][0] <= rec['madds'] <= BUDGET and 0.0 <= rec['search_metric'] <= 1.0
    assert set(rec['sample']) == set(SK.labels)


def test_budget_penalty_is_differentiable_where_nni_export_is_not():
    profiler = AnalyticCostProfiler(SK)
    values = {spec.label: manual_space(SK).candidates(spec) for spec in SK.blocks()}
    alphas = {l: torch.zeros(len(v), requires_grad=True) for l, v in values.items()}
    pen = BudgetPenalty(profiler, BUDGET).bind(alphas, values)
    loss, details = pen(torch.tensor(1.0, requires_grad=True), {})
    loss.backward()
    grad = alphas['s1_b0'].grad
    assert grad is not None and grad.abs().sum() > 0
    # the gradient pushes towards cheaper candidates: e3 k3 (cheapest) gets the most negative gradient... of loss
    cheapest = min(range(len(values['s1_b0'])), key=lambda i: profiler.block_cost('s1_b0', values['s1_b0'][i]))
    assert grad[cheapest] == grad.min()
    # NNI's own export_probs gives floats: the same penalty is then a constant (no gradient)
    floats = {l: {v: 1.0 / len(vs) for v in vs} for l, vs in values.items()}
    unbound = BudgetPenalty(profiler, BUDGET)
    x = torch.tensor(1.0, requires_grad=True)
    y, _ = unbound(x, floats)
    assert float(y) == pytest.approx(float(loss))


def test_constrained_export_moves_inside_the_budget():
    profiler = AnalyticCostProfiler(SK)
    space = manual_space(SK)
    probs = {spec.label: {c: 1.0 / len(space.candidates(spec)) for c in space.candidates(spec)} for spec in SK.blocks()}
    big = {spec.label: 'e6_relu6:0-1=dw7x7' for spec in SK.blocks()}
    assert profiler.profile(big) > BUDGET
    fixed = constrained_export(big, probs, profiler, BUDGET)
    assert profiler.profile(fixed) <= BUDGET
    assert constrained_export(fixed, probs, profiler, BUDGET) == fixed     # already inside: unchanged
    # from below: a network far under the budget is moved up into [0.9 B, B], never over it
    small = {spec.label: min(space.candidates(spec), key=lambda c: profiler.block_cost(spec.label, c))
             for spec in SK.blocks()}
    assert profiler.profile(small) < 0.9 * BUDGET
    filled = constrained_export(small, probs, profiler, BUDGET, floor=0.9 * BUDGET)
    assert 0.9 * BUDGET <= profiler.profile(filled) <= BUDGET
    assert constrained_export(small, probs, profiler, BUDGET) == small     # no floor: only moves down


def test_cost_range_spans_the_space():
    import random
    space, profiler = manual_space(SK), AnalyticCostProfiler(SK)
    lo, hi = cost_range(space)
    # known ends of ProxylessNAS's space: MBConv e6 k7 everywhere; e3 k3, or no block where one may be skipped
    assert hi == profiler.profile({label: 'e6_relu6:0-1=dw7x7' for label in SK.labels})
    assert lo == profiler.profile({spec.label: 'zero' if spec.zero_allowed else 'e3_relu6:0-1=dw3x3' for spec in SK.blocks()})
    rs = random.Random(0)
    for _ in range(50):
        assert lo <= profiler.profile({spec.label: rs.choice(space.candidates(spec)) for spec in SK.blocks()}) <= hi


def test_retrain_killed_after_an_epoch_resumes_to_the_same_network(tmp_path, digits):
    """A retrain with a checkpoint file, stopped after its second epoch, continues from it to the same
    weights, history and test accuracy as the straight run (augmentation and dropout streams included)."""
    from autospace_nni.retrain import retrain
    from autospace_nni.space.network import Architecture
    arch = Architecture(SK, {'s1_b0': 'e3_hswish_se:0-1=dw5x5,0-2=skip,1-3=conv1x1,2-3=dw3x3',
                             's2_b0': 'e6_relu6:0-1=dw3x3', 's2_b1': 'zero', 's3_b0': 'e1_relu6:0-1=dw3x3'})
    kw = dict(epochs=3, augment=True, flip=True, erase=True, seed=4, batch_size=128)
    straight = retrain(arch, digits, **kw)

    class Killed(Exception):
        pass

    def kill(epoch, acc):
        if epoch == 1:
            raise Killed()
    ck = tmp_path / 'retrain.ckpt'
    with pytest.raises(Killed):
        retrain(arch, digits, checkpoint=ck, on_epoch=kill, **kw)
    assert ck.exists() and len(torch.load(ck, weights_only=True)['history']) == 2
    from autospace_nni.retrain import progress
    half = progress(ck)                                      # what a report shows of an unfinished retrain
    assert half['epochs'] == 2 and half['history'] == straight['history'][:2] and half['wall_s'] > 0
    resumed = retrain(arch, digits, checkpoint=ck, **kw)
    assert not ck.exists() and progress(ck) is None          # removed once training ended
    assert resumed['test_acc'] == straight['test_acc']
    assert [h['train_loss'] for h in resumed['history']] == [h['train_loss'] for h in straight['history']]
    with pytest.raises(Killed):
        retrain(arch, digits, checkpoint=ck, on_epoch=kill, **kw)
    with pytest.raises(ValueError, match='different epochs, lr'):
        retrain(arch, digits, checkpoint=ck, **dict(kw, epochs=5, lr=0.2))


def test_flip_mirrors_about_half_the_images_and_leaves_its_input_alone():
    from autospace_nni.retrain import _flip
    x = torch.randn(400, 1, 8, 8)
    before = x.clone()
    out = _flip(x, torch.Generator().manual_seed(0))
    mirrored = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.equal(x, before) and bool((mirrored | same).all())      # each image mirrored or untouched
    assert 160 < int(mirrored.sum()) < 240                               # p = 0.5 of 400 (about 4 sd either side)


def test_a_checkpoint_from_before_flips_resumes_without_them_and_is_refused_with_them(tmp_path, digits):
    """Checkpoints written before the recipe had ``flip`` trained without flips: they resume as such (to the
    straight run's result), and a retrain with flips refuses them."""
    from autospace_nni.retrain import retrain
    from autospace_nni.space.network import Architecture
    arch = Architecture(SK, {'s1_b0': 'e6_relu6:0-1=dw3x3', 's2_b0': 'e6_relu6:0-1=dw3x3', 's2_b1': 'zero',
                             's3_b0': 'e1_relu6:0-1=dw3x3'})
    kw = dict(epochs=2, augment=True, seed=1, batch_size=256)
    straight = retrain(arch, digits, **kw)

    class Killed(Exception):
        pass

    def kill(epoch, acc):
        raise Killed()
    ck = tmp_path / 'retrain.ckpt'
    with pytest.raises(Killed):
        retrain(arch, digits, checkpoint=ck, on_epoch=kill, **kw)
    state = torch.load(ck, weights_only=True)
    del state['recipe']['flip']                                          # as an older version wrote it
    torch.save(state, ck)
    with pytest.raises(ValueError, match=r'different flip\)'):
        retrain(arch, digits, checkpoint=ck, flip=True, **kw)
    assert retrain(arch, digits, checkpoint=ck, **kw)['test_acc'] == straight['test_acc']


def test_export_round_trips(tmp_path, digits):
    from autospace_nni.retrain import retrain
    from autospace_nni.space.network import Architecture
    arch = Architecture(SK, {'s1_b0': 'e3_hswish_se:0-1=dw5x5,0-2=skip,1-3=conv1x1,2-3=dw3x3',
                             's2_b0': 'e6_relu6:0-1=dw3x3', 's2_b1': 'zero',
                             's3_b0': 'e1_relu6:0-1=sep_dw1x3_3x1,1-2=avg_pool3x3,0-2=dil_dw3x3'})
    m = retrain(arch, digits, epochs=1, augment=True, out_dir=tmp_path)
    assert set(json.loads((tmp_path / 'metrics.json').read_text())) >= {'test_acc', 'madds', 'params', 'epochs',
                                                                          'wall_time_s'}
    assert m['madds'] == arch.cost().madds
    x = digits.test.tensors[0][:16]
    # plain state dict, rebuilt by the exported loader in a process where NNI cannot be imported
    code = (f'import sys, torch; sys.modules["nni"] = None; sys.path.insert(0, {str(tmp_path)!r}); '
            f'from load_model import load; net = load({str(tmp_path)!r}); x = torch.load({str(tmp_path / "x.pt")!r}); '
            f'torch.save(net(x), {str(tmp_path / "y_plain.pt")!r})')
    torch.save(x, tmp_path / 'x.pt')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        from load_model import load
        net = load(tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop('load_model', None)
    with torch.no_grad():
        ref = net(x)
    assert torch.allclose(torch.load(tmp_path / 'y_plain.pt'), ref, atol=1e-6)
    assert ref.shape == (16, 10) and torch.isfinite(ref).all()
    assert ref.std(0).max() > 1e-4                  # a real forward: the outputs depend on the input
    # TorchScript
    ts = torch.jit.load(str(tmp_path / 'model.ts'))
    with torch.no_grad():
        assert torch.allclose(ts(x), ref, atol=1e-5)
    # ONNX through onnxruntime, at another batch size than the export's
    import onnxruntime as ort
    sess = ort.InferenceSession(str(tmp_path / 'model.onnx'), providers=['CPUExecutionProvider'])
    got = torch.from_numpy(sess.run(None, {'input': x.numpy()})[0])
    assert torch.allclose(got, ref, atol=1e-4)
    assert m['exports']['onnx_max_abs_diff'] < 1e-4


def test_cli_search_then_train(tmp_path, spaces):
    learned_path = tmp_path / 'learned_space.json'
    spaces['learned'].save(learned_path)
    run = lambda *a: subprocess.run([sys.executable, '-m', 'autospace_nni.cli', *a], capture_output=True, text=True,
                                    timeout=600)
    r = run('search', '--space', str(learned_path), '--skeleton', 'tiny-8', '--strategy', 'darts',
            '--budget-madds', str(BUDGET), '--epochs', '1', '--out', str(tmp_path / 's'))
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((tmp_path / 's' / 'arch.json').read_text())
    assert rec['madds'] <= BUDGET and rec['strategy'] == 'darts' and rec['seed'] == 0
    r = run('train', '--arch', str(tmp_path / 's' / 'arch.json'), '--epochs', '1', '--out', str(tmp_path / 't'),
            '--no-progress', '--augment', '--flip', '--erase', '--weight-decay', '5e-4')
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((tmp_path / 't' / 'metrics.json').read_text())
    assert metrics['madds'] == rec['madds'] and metrics['epochs'] == 1
    assert {k: metrics['recipe'][k] for k in ('augment', 'flip', 'erase', 'weight_decay')} == {
        'augment': True, 'flip': True, 'erase': True, 'weight_decay': 5e-4}     # the flags reach the recipe
    # refusals and bad input: one line, exit 2
    r = run('search', '--space', 'manual', '--strategy', 'darts', '--out', str(tmp_path / 'x'))
    assert r.returncode == 2 and 'needs --skeleton' in r.stderr
    r = run('search', '--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'darts', '--budget-madds', '1000',
            '--out', str(tmp_path / 'x'))
    assert r.returncode == 2 and 'below the cheapest network' in r.stderr
    r = run('train', '--arch', str(tmp_path / 's' / 'arch.json'), '--out', str(tmp_path / 't'))
    assert r.returncode == 2 and 'already holds metrics.json' in r.stderr
