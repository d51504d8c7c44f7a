"""AutoSpace on model spaces nobody here wrote for it: NNI's hub ProxylessNAS and a Hello-NAS-style space
(examples/hello_nas_space.py). Adoption (which choices evolve, which stay, and why), honest costs, the
evolution, the learned space as the user's own space, and NNI's DARTS on it."""

import copy
import dataclasses
import logging
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from autospace_nni import AutoSpace, Cell, LearnedSpace, adopt, load_dataset, make_evaluator
from autospace_nni.cells import CellBlock, count_by_hooks
from autospace_nni.cells.fixed import FixedCandidate
from autospace_nni.errors import LearnedSpaceError
from autospace_nni.space.adopted import recognise_candidate
from autospace_nni.space.skeleton import BlockSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
from hello_nas_space import DepthwiseSeparable, HelloNasSpace  # noqa: E402

logging.getLogger('pytorch_lightning').setLevel(logging.ERROR)
warnings.filterwarnings('ignore')


@pytest.fixture(scope='module')
def digits():
    return load_dataset('digits', seed=0)


@pytest.fixture(scope='module')
def digits_rgb(digits):
    rgb = lambda ds: TensorDataset(ds.tensors[0].repeat(1, 3, 1, 1), ds.tensors[1])  # noqa: E731
    return dataclasses.replace(digits, train=rgb(digits.train), val=rgb(digits.val), test=rgb(digits.test),
                               input_shape=(3, 8, 8))


def _spec(c_in, c_out, stride, hw=8):
    return BlockSpec('x', 0, 0, c_in, c_out, stride, hw, hw, 'x', False)


def _trains(model, x, y, steps=8):
    """A few SGD steps on one batch lower its loss (the model is a real, trainable network)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses[-1] < losses[0]


def _darts_pick(space, data, workdir):
    """NNI's DARTS on ``space`` for one epoch. One-shot strategies turn the space they get into a supernet in
    place, so it searches a copy and ``space`` stays freezable."""
    from nni.nas.experiment import NasExperiment
    from nni.nas.oneshot.pytorch.strategy import DARTS
    exp = NasExperiment(copy.deepcopy(space), make_evaluator(data, max_epochs=1, batch_size=64), DARTS())
    exp.config.experiment_working_directory = str(workdir)
    exp.run()
    try:
        return exp.export_top_models(formatter='dict')[0]
    finally:
        exp.stop()


def test_recognise_candidate_accepts_only_exact_equivalents():
    from nni.nas.hub.pytorch.proxylessnas import InvertedResidual
    # NNI's own MBConv: same function and cost as the cell, so expressible
    assert str(recognise_candidate(InvertedResidual(8, 16, 6, 5, 2), _spec(8, 16, 2))) == 'e6_relu6:0-1=dw5x5'
    assert str(recognise_candidate(InvertedResidual(16, 16, 3, 7, 1), _spec(16, 16, 1))) == 'e3_relu6:0-1=dw7x7'
    # our own blocks, whatever the DAG
    cell = Cell.parse('e3_hswish_se:0-1=dw3x3,0-2=skip,1-2=avg_pool3x3')
    assert recognise_candidate(CellBlock(cell, 8, 8, 1), _spec(8, 8, 1)) == cell
    # a depthwise-separable conv is the e1 cell when it has no shortcut to differ in ...
    assert str(recognise_candidate(DepthwiseSeparable(8, 16, 3), _spec(8, 16, 1))) == 'e1_relu6:0-1=dw3x3'
    # ... but not with c_in == c_out, where the cell adds an identity shortcut and the module does not
    assert recognise_candidate(DepthwiseSeparable(16, 16, 3), _spec(16, 16, 1)) is None
    # ReLU is not ReLU6: same structure, other function
    relu = InvertedResidual(8, 16, 6, 3, 1, activation_layer=nn.ReLU)
    assert recognise_candidate(relu, _spec(8, 16, 1)) is None
    # plain convolutions and pools are outside the grammar
    assert recognise_candidate(nn.Conv2d(8, 16, 3, padding=1), _spec(8, 16, 1)) is None
    assert recognise_candidate(nn.MaxPool2d(3, 1, 1), _spec(8, 8, 1)) is None


def test_hello_nas_adoption_table_and_costs():
    space = HelloNasSpace()
    adopted = adopt(space, (1, 8, 8))
    layout = adopted.layout
    assert layout.labels == ['conv2', 'conv3']
    assert layout.user_candidates['conv2'] == {'conv3x3': 'fixed:conv3x3', 'conv5x5': 'fixed:conv5x5',
                                               'sepconv3x3': 'e1_relu6:0-1=dw3x3'}
    assert layout.user_candidates['conv3'] == {'0': 'fixed:0', '1': 'fixed:1'}
    # the expressible candidate is the reference; with none, the user's first candidate is
    assert str(adopted.references['conv2']) == 'e1_relu6:0-1=dw3x3'
    assert adopted.references['conv3'] == FixedCandidate('0')
    conv2 = layout.blocks()[0]
    assert (conv2.c_in, conv2.c_out, conv2.stride, conv2.height) == (16, 32, 1, 8)
    left = {x.label: x for x in layout.left_alone}
    assert left['skip'].kind == 'InputChoice' and left['hidden'].kind == 'MutableLinear'
    table = layout.format_table()
    assert 'conv2' in table and 'left alone (InputChoice)' in table and 'evolved' in table
    # fixed candidates are priced by a hook count of the user's module
    for name, madds, params in conv2.fixed:
        assert (madds, params) == count_by_hooks(space.conv2[name], (16, 8, 8))
    # the rest of the network is priced as the evolution runs it: outside + choices == the whole frozen net
    sample = {'conv2': 'conv5x5', 'conv3': 1, 'skip': [0], 'hidden': 32}
    frozen = space.freeze(sample)
    conv3 = layout.blocks()[1]
    expect = (layout.outside.madds + conv2.fixed_cost('conv5x5')[0] + conv3.fixed_cost('1')[0],
              layout.outside.params + conv2.fixed_cost('conv5x5')[1] + conv3.fixed_cost('1')[1])
    assert count_by_hooks(frozen, (1, 8, 8)) == expect
    # the user's space is not touched
    assert isinstance(space.conv2, LayerChoice) and list(space.conv2.names) == ['conv3x3', 'conv5x5', 'sepconv3x3']


class _TwoInputChoice(ModelSpace):
    """Choices AutoSpace must leave alone: two inputs, a shape change cells cannot make, never called."""

    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    class Mul(nn.Module):
        def forward(self, a, b):
            return a * b

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.merge = LayerChoice([self.Add(), self.Mul()], label='merge')
        self.valid = LayerChoice([nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3, dilation=1)], label='valid_conv')
        self.unused = LayerChoice([nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1)], label='unused')
        self.block = LayerChoice({'a': nn.Conv2d(8, 8, 3, padding=1), 'b': nn.Conv2d(8, 8, 5, padding=2)},
                                 label='block')
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.merge(x, x)
        x = self.valid(self.block(x))
        return self.head(x.mean((2, 3)))


def test_choices_that_cannot_evolve_are_left_alone_and_listed():
    adopted = adopt(_TwoInputChoice(), (1, 8, 8))
    layout = adopted.layout
    assert layout.labels == ['block']
    reasons = {x.label: x.reason for x in layout.left_alone}
    assert reasons['merge'].startswith('takes 2 inputs')
    assert 'maps 8x8 to 6x6' in reasons['valid_conv']
    assert reasons['unused'] == 'not reached by a forward pass'
    table = layout.format_table()
    for label in ('merge', 'valid_conv', 'unused', 'block'):
        assert label in table
    with pytest.raises(ValueError, match='no LayerChoice that AutoSpace can evolve'):
        class OnlyMerge(ModelSpace):
            def __init__(self):
                super().__init__()
                self.merge = LayerChoice([_TwoInputChoice.Add(), _TwoInputChoice.Mul()], label='m')

            def forward(self, x):
                return self.merge(x, x)
        adopt(OnlyMerge(), (1, 4, 4))
    with pytest.raises(ValueError, match='input_shape'):
        adopt(_TwoInputChoice())
    # the user's candidates never age out, so the population needs room for children beside them
    with pytest.raises(ValueError, match='population_size \\(2\\) must exceed the 2 candidates'):
        AutoSpace(population_size=2, sample_k=1, seed=0).prepare(adopted)


def test_hello_nas_evolves_in_nasexperiment_then_darts_on_the_learned_space(digits, tmp_path, caplog):
    from nni.nas.experiment import NasExperiment
    torch.manual_seed(0)
    space = HelloNasSpace()
    strategy = AutoSpace(population_size=8, sample_k=2, top_m=3, warmup_iterations=1, p_mutation=1.0,
                         budget_madds=2e6, seed=0)
    exp = NasExperiment(space, make_evaluator(digits, max_epochs=4, batch_size=64), strategy)
    exp.config.experiment_working_directory = str(tmp_path / 'nni')
    with caplog.at_level(logging.INFO, logger='nni.autospace'):
        exp.run()
    try:
        best = exp.export_top_models(formatter='dict')[0]
    finally:
        exp.stop()
    assert 'which choices evolve and which stay' in caplog.text and 'left alone (InputChoice)' in caplog.text
    # the pinned choices keep the values they had during the evolution
    assert best['skip'] == [0] and best['hidden'] == 32 and set(best) == {'conv2', 'conv3', 'skip', 'hidden'}
    assert strategy.iteration == 4 and all(r['expected_madds'] > 0 for r in strategy.history)

    # fixed candidates competed (were sampled and scored) but never mutated
    for g, pop in strategy.populations.items():
        fixed = [m for m in pop.members if isinstance(m.cell, FixedCandidate)]
        assert fixed and all(m.reference for m in fixed)
        assert not any((m.parent or '').startswith('fixed:') for m in pop.members)
    # conv3's reference is a fixed module: a branch in every scored iteration (4 minus 1 warm-up)
    assert strategy.populations['conv3'].find('fixed:0').evals == 3

    learned = strategy.learned_space()
    for label in ('conv2', 'conv3'):
        names = learned.candidates(learned.layout.blocks()[['conv2', 'conv3'].index(label)])
        assert best[label] in names
    # the analytic cost of an architecture equals a hook count of the user's frozen network
    better = learned.model_space()
    assert type(better) is HelloNasSpace and better is not space
    assert set(better.simplify()) == set(space.simplify())
    sample = {**best}
    assert tuple(learned.cost(sample)) == count_by_hooks(better.freeze(sample), (1, 8, 8))
    assert strategy.profiler.profile({k: str(learned.candidate(b, best[k]))
                                      for b in learned.layout.blocks() for k in [b.label]}) \
        == learned.cost(sample).madds

    # saves and loads like any learned space; needs the user's space to rebuild
    path = tmp_path / 'learned_space.json'
    learned.save(path)
    again = LearnedSpace.load(path)
    assert again.to_dict() == learned.to_dict()
    with pytest.raises(LearnedSpaceError, match='model_space\\(base=...\\)'):
        again.model_space()
    with pytest.raises(LearnedSpaceError, match='learned on'):
        again.model_space(base=_TwoInputChoice())
    rebuilt = again.model_space(base=HelloNasSpace())
    assert {k: v.values for k, v in rebuilt.simplify().items()} == {k: v.values for k, v in better.simplify().items()}

    # NNI's DARTS searches it; the frozen pick is the user's network class and it trains
    arch = _darts_pick(rebuilt, digits, tmp_path / 'nni2')
    assert arch['conv2'] in rebuilt.simplify()['conv2'].values
    model = rebuilt.freeze(arch)
    assert type(model) is HelloNasSpace
    x, y = digits.train.tensors[0][:64], digits.train.tensors[1][:64]
    assert _trains(model, x, y)


def test_nni_hub_proxylessnas(digits_rgb, tmp_path):
    from nni.nas.hub.pytorch import ProxylessNAS
    torch.manual_seed(0)
    hub = ProxylessNAS(num_labels=10, width_mult=0.25)
    strategy = AutoSpace(population_size=10, sample_k=2, top_m=2, warmup_iterations=1, iterations=2, seed=0)
    learned = strategy.evolve(hub, make_evaluator(digits_rgb, max_epochs=2, batch_size=64))
    layout = learned.layout
    # every LayerChoice evolves, and every MBConv candidate is expressible: six reference cells each
    assert len(layout.labels) == 21 and 's2_i3' in layout.labels and 's7_i0' in layout.labels
    for g, cands in layout.user_candidates.items():
        assert sorted(cands) == ['k3e3', 'k3e6', 'k5e3', 'k5e6', 'k7e3', 'k7e6']
        assert not any(t.startswith('fixed:') for t in cands.values())
    assert {x.kind for x in layout.left_alone} == {'Repeat'}
    for g, pop in strategy.populations.items():
        assert sum(m.reference for m in pop.members) == 6
    # user candidates keep their names in the learned space; the others are cell texts
    names = {c.name for cells in learned.groups.values() for c in cells}
    assert 'k3e3' in names
    path = tmp_path / 'learned.json'
    learned.save(path)
    better = LearnedSpace.load(path).model_space(base=ProxylessNAS(num_labels=10, width_mult=0.25))
    assert set(better.simplify()) == set(hub.simplify())
    arch = _darts_pick(better, digits_rgb, tmp_path / 'nni')
    model = better.freeze(arch)
    assert type(model) is ProxylessNAS
    x, y = digits_rgb.train.tensors[0][:64], digits_rgb.train.tensors[1][:64]
    assert _trains(model, x, y)


def test_drop_in_example_runs(tmp_path):
    import drop_in_existing_space
    result = drop_in_existing_space.main(['--iterations', '2', '--search-epochs', '1', '--train-epochs', '1',
                                          '--out', str(tmp_path)])
    assert (tmp_path / 'learned_space.json').exists() and (tmp_path / 'result.json').exists()
    assert result['space'] == 'HelloNasSpace' and 0.0 <= result['test_accuracy'] <= 1.0
    assert set(result['architecture']) == {'conv2', 'conv3', 'skip', 'hidden'} and result['madds'] > 0


def test_adopted_space_resumes_from_its_checkpoint(digits, tmp_path):
    """A crashed evolution of an adopted space resumes to the same learned space (fixed members included)."""
    class Crash(Exception):
        pass

    def crash_at_second(strategy, record):
        if record['iteration'] == 1:
            raise Crash

    def run(ckpt_dir, resume=None, crash=False):
        torch.manual_seed(0)
        strategy = AutoSpace(population_size=6, sample_k=2, top_m=3, warmup_iterations=1, iterations=3,
                             checkpoint_dir=str(ckpt_dir), seed=1)
        if crash:
            strategy.on_iteration_end.append(crash_at_second)
        learned = strategy.evolve(HelloNasSpace(), make_evaluator(digits, max_epochs=3, batch_size=128),
                                  resume_from=resume)
        return learned, strategy
    straight, _ = run(tmp_path / 'a')
    with pytest.raises(Crash):
        run(tmp_path / 'b', crash=True)
    resumed, strategy = run(tmp_path / 'b', resume=AutoSpace.find_checkpoint(tmp_path / 'b'))
    assert strategy.iteration == 3
    assert resumed.to_dict()['groups'] == straight.to_dict()['groups']
    assert any(isinstance(m.cell, FixedCandidate) for m in strategy.populations['conv3'].members)


def _report_madds(model):
    """Trial-side evaluator (imported by NNI's trial processes): the MAdds of the network the trial built."""
    import nni
    nni.report_final_result(float(count_by_hooks(model, (1, 8, 8))[0]))


def test_learned_adopted_space_runs_in_a_multi_trial_experiment(digits, tmp_path, monkeypatch):
    """NNI trials rebuild the space from its __init__ arguments in another process; each trial must build the
    same network as freezing the space here, learned cells included."""
    import socket
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment
    from nni.nas.strategy import Random
    strategy = AutoSpace(population_size=6, sample_k=2, top_m=3, warmup_iterations=1, iterations=2, seed=0)
    learned = strategy.evolve(HelloNasSpace(), make_evaluator(digits, max_epochs=2, batch_size=128))
    better = learned.model_space()
    here = Path(__file__).resolve().parent   # trials import this module and the space's
    monkeypatch.setenv('PYTHONPATH', f'{here}:{here.parent / "examples"}')
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    exp = NasExperiment(better, FunctionalEvaluator(_report_madds), Random(seed=0))
    exp.config.max_trial_number = 3
    exp.config.trial_concurrency = 1
    exp.config.experiment_working_directory = str(tmp_path / 'nni')
    exp.run(port=port)
    try:
        models = list(exp.strategy.list_models(limit=None))
    finally:
        exp.stop()
    assert len(models) == 3 and all(m.metric is not None for m in models)
    learned_cells = 0
    for m in models:
        assert m.metric == count_by_hooks(better.freeze(m.sample), (1, 8, 8))[0]
        learned_cells += sum(':' in str(m.sample[l]) for l in ('conv2', 'conv3'))
        if m.sample['skip'] == [0] and m.sample['hidden'] == 32:
            assert m.metric == learned.cost(m.sample).madds
        else:
            with pytest.raises(LearnedSpaceError, match='count the built network'):
                learned.cost(m.sample)
    assert learned_cells > 0   # the trials did build evolved cells, not only the user's candidates


def test_cli_adopt_shows_the_table_and_refuses_bad_input(capsys):
    from autospace_nni.cli import main
    root = Path(__file__).resolve().parents[1]
    assert main(['adopt', f'{root}/examples/hello_nas_space.py:HelloNasSpace', '--input-shape', '1', '8', '8']) == 0
    out = capsys.readouterr().out
    assert 'left alone (InputChoice)' in out and 'sepconv3x3     e1_relu6:0-1=dw3x3' in out
    for argv, needle in [(['nope.py:X'], 'does not exist'), (['torch.nn:Linear'], 'not an NNI ModelSpace'),
                         (['HelloNasSpace'], 'path/to/file.py:Class'),
                         ([f'{root}/examples/hello_nas_space.py:HelloNasSpace', '--kwargs', '[1]'], 'JSON object'),
                         ([f'{root}/examples/hello_nas_space.py:HelloNasSpace', '--kwargs', '{"depth": 3}'],
                          'unexpected keyword')]:
        assert main(['adopt', *argv, '--input-shape', '1', '8', '8']) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count('\n') == 1, err
