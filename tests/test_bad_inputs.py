"""Bad input, over every command: exit status 2, one line naming the problem, no traceback, and nothing
written (the folder the command runs in holds exactly the inputs it was given).

Each case runs the console script's ``main`` in-process (what ``autospace-nni`` calls), in a fresh folder
holding the bad documents below."""

import json
import math

import pytest

from autospace_nni.cli import main

_SPACES = {
    'exits.py': 'raise SystemExit(3)\n',
    'fails.py': 'import math\nx = 1 / 0\n',
    'ctor.py': ('from nni.nas.nn.pytorch import ModelSpace\n\n\nclass S(ModelSpace):\n    def __init__(self):\n'
                '        super().__init__()\n        raise RuntimeError("no GPU here")\n'),
}

CASES = [
    ('cost', [], 'exactly one of --preset, --skeleton or --arch'),
    ('cost', ['--preset', 'nope'], "unknown network preset 'nope'"),
    ('cost', ['--skeleton', 'nope'], "unknown skeleton 'nope'"),
    ('cost', ['--arch', 'missing.json'], 'missing.json does not exist'),
    ('cost', ['--arch', 'bad.json'], 'bad.json is not valid JSON'),
    ('cost', ['--arch', 'huge_arch.json'], 'expand ratio 99999999 is over the limit of 32'),
    ('cost', ['--arch', 'wide_arch.json'], 'head_width 1000000 is over the limit of 8192'),
    ('cost', ['--arch', 'missing_arch.json'], "missing blocks ['s1_b0'"),
    ('data', ['--dataset', 'nope'], "unknown dataset 'nope'"),
    ('data', ['--dataset', 'fashion-mnist', '--data-dir', 'nowhere'], 'folder nowhere does not exist'),
    ('data', ['--seed', '-1'], "--seed: must be an integer >= 0, got '-1'"),
    ('evolve', ['--out', 'o', '--budget-madds', 'nan'], '--budget-madds must be a finite number'),
    ('evolve', ['--out', 'o', '--budget-madds', '-5'], '--budget-madds must be a finite number in (0, inf)'),
    ('evolve', ['--out', 'o', '--sample-k', '5', '--population-size', '2'], '--sample-k (5) cannot exceed population_size (2)'),
    ('evolve', ['--out', 'o', '--reference', 'e99999999_relu6:0-1=dw3x3'], '--reference: expand ratio 99999999 is over the limit'),
    ('evolve', ['--out', 'o', '--lr', 'inf'], "--lr: must be a finite number in (0, inf), got 'inf'"),
    ('evolve', ['--out', 'o', '--batch-size', '0'], "--batch-size: must be an integer >= 1, got '0'"),
    ('evolve', ['--out', 'o', '--limit', '-3'], "--limit: must be an integer >= 1, got '-3'"),
    ('evolve', ['--out', 'o', '--devices', '0'], '--devices: must be an integer >= 1'),
    ('evolve', ['--out', 'o', '--skeleton', 'nope'], "unknown skeleton 'nope'"),
    ('evolve', ['--out', 'o', '--dataset', 'nope'], "unknown dataset 'nope'"),
    ('evolve', ['--out', 'o', '--iterations', '0'], '--iterations must be an integer >= 1'),
    ('evolve', ['--out', 'o', '--config', 'missing.yml'], 'config file missing.yml does not exist'),
    ('evolve', ['--resume', 'nowhere'], 'nowhere holds no run to resume'),
    ('evolve', ['--out', 'o', '--p-mutation', '1.5'], '--p-mutation must be a finite number in [0, 1], got 1.5'),
    ('evolve', ['--out', 'o', '--seed', 'x'], "--seed: invalid int value: 'x'"),
    ('evolve', ['--out', 'o', '--bogus-flag'], 'unrecognized arguments: --bogus-flag'),
    ('search', ['--space', 'manual', '--strategy', 'darts', '--out', 'o'], '--space manual needs --skeleton'),
    ('search', ['--space', 'bad.json', '--strategy', 'darts', '--out', 'o'], 'bad.json is not valid JSON'),
    ('search', ['--space', 'huge_space.json', '--strategy', 'darts', '--out', 'o'], 'expand ratio 99999999 is over the limit'),
    ('search', ['--space', 'nan_space.json', '--strategy', 'darts', '--out', 'o'], 'non-finite number at /groups/s1_first/cells/0/fitness'),
    ('search', ['--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'darts', '--out', 'o', '--epochs', '0'], "--epochs: must be an integer >= 1, got '0'"),
    ('search', ['--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'darts', '--out', 'o', '--budget-floor', '1.5'], "--budget-floor: must be a finite number in (0, 1], got '1.5'"),
    ('search', ['--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'nope', '--out', 'o'], "--strategy: invalid choice: 'nope'"),
    ('search', ['--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'darts', '--out', 'o', '--port', '0'], '--port: must be an integer >= 1 and <= 65535'),
    ('search', ['--space', 'manual', '--skeleton', 'tiny-8', '--strategy', 'darts', '--out', 'o', '--budget-madds', '10'], 'budget 10 MAdds is below the cheapest network'),
    ('train', ['--arch', 'huge_arch.json', '--out', 'o'], 'expand ratio 99999999 is over the limit'),
    ('train', ['--arch', 'missing_arch.json', '--out', 'o'], 'missing blocks'),
    ('train', ['--arch', 'wide_arch.json', '--out', 'o'], 'head_width 1000000 is over the limit'),
    ('train', ['--arch', 'missing.json', '--out', 'o', '--lr', 'nan'], "--lr: must be a finite number in (0, inf), got 'nan'"),
    ('train', ['--arch', 'missing.json', '--out', 'o', '--label-smoothing', '1'], "--label-smoothing: must be a finite number in [0, 1), got '1'"),
    ('train', ['--arch', 'missing.json', '--out', 'o', '--epochs', '-1'], "--epochs: must be an integer >= 1, got '-1'"),
    ('train', ['--arch', 'missing.json', '--out', 'o', '--weight-decay', '-1'], "--weight-decay: must be a finite number in [0, inf), got '-1'"),
    ('export-nni-space', ['manual'], '--space manual needs --skeleton'),
    ('export-nni-space', ['wrong.json'], "not a learned space (format is 'other'"),
    ('export-nni-space', ['huge_space.json'], 'expand ratio 99999999 is over the limit'),
    ('sample-space', ['manual', '--skeleton', 'tiny-8', '--out', 'o', '--n', '0'], "--n: must be an integer >= 1, got '0'"),
    ('sample-space', ['manual', '--skeleton', 'tiny-8', '--out', 'o', '--madds-range', '5', '1'], '--madds-range LO HI needs LO <= HI'),
    ('sample-space', ['huge_space.json', '--out', 'o'], 'expand ratio 99999999 is over the limit'),
    ('sample-space', ['manual', '--skeleton', 'tiny-8', '--out', 'o', '--train-seed', '-2'], "--train-seed: must be an integer >= 0, got '-2'"),
    ('compare', ['nowhere'], 'nowhere holds no design_space.jsonl'),
    ('report', ['nowhere'], 'nowhere is not a folder'),
    ('adopt', ['exits.py:S', '--input-shape', '1', '8', '8'], 'importing exits.py: it called sys.exit(3)'),
    ('adopt', ['fails.py:S', '--input-shape', '1', '8', '8'], 'importing fails.py failed (at fails.py:2): ZeroDivisionError'),
    ('adopt', ['ctor.py:S', '--input-shape', '1', '8', '8'], 'failed (at ctor.py:7): RuntimeError: no GPU here'),
    ('adopt', ['nope.py:S', '--input-shape', '1', '8', '8'], 'nope.py does not exist'),
    ('adopt', ['nothing', '--input-shape', '1', '8', '8'], 'name a space as path/to/file.py:Class'),
    ('adopt', ['ctor.py:S', '--input-shape', '0', '8', '8'], "--input-shape: must be an integer >= 1, got '0'"),
    ('adopt', ['ctor.py:S', '--input-shape', '1', '8', '8', '--kwargs', '[1]'], '--kwargs must be a JSON object'),
]


def _write_inputs(folder):
    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.skeleton import Skeleton
    sk = Skeleton.preset('tiny-8')
    for name, text in _SPACES.items():
        (folder / name).write_text(text)
    (folder / 'bad.json').write_text('{not json')
    huge = 'e99999999_relu6:0-1=dw3x3'
    (folder / 'huge_arch.json').write_text(json.dumps({'skeleton': 'tiny-8', 'sample': {l: huge for l in sk.labels}}))
    (folder / 'missing_arch.json').write_text(json.dumps({'skeleton': 'tiny-8', 'sample': {}}))
    wide = {**sk.to_dict(), 'head_width': 10 ** 6}
    (folder / 'wide_arch.json').write_text(json.dumps({'skeleton': wide, 'sample': {l: 'e6_relu6:0-1=dw3x3'
                                                                                 for l in sk.labels}}))
    (folder / 'wrong.json').write_text(json.dumps({'format': 'other'}))
    doc = manual_space(sk).to_dict()
    group = next(iter(doc['groups']))
    doc['groups'][group]['cells'][0]['cell'] = huge
    (folder / 'huge_space.json').write_text(json.dumps(doc))
    doc = manual_space(sk).to_dict()
    doc['groups'][group]['cells'][0]['fitness'] = math.nan   # json writes NaN, and reads it back
    (folder / 'nan_space.json').write_text(json.dumps(doc))


def _snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob('*') if '__pycache__' not in p.parts)


def test_the_table_covers_every_command():
    from autospace_nni.cli import COMMANDS
    assert len(CASES) >= 40
    assert set(COMMANDS) - {cmd for cmd, _, _ in CASES} == {'demo'}   # demo is evolve with a default --out


@pytest.mark.parametrize('command, args, needle', CASES, ids=[f'{c} {" ".join(a)}' for c, a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, command, args, needle):
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = _snapshot(tmp_path)
    rc = main([command, *args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('autospace-nni')]
    assert rc == 2, err
    assert 'Traceback' not in err and len(lines) == 1 and lines[0].startswith('autospace-nni: error: ')
    assert needle in lines[0], lines[0]
    assert _snapshot(tmp_path) == before


def test_builds_over_the_memory_bound_are_refused_before_allocating(monkeypatch):
    import torch
    from autospace_nni import Architecture, Cell, Skeleton
    from autospace_nni.errors import ResourceError
    from autospace_nni.limits import BYTES_PER_PARAM
    from autospace_nni.space.learned import manual_space
    from autospace_nni.space.skeleton import reference_cell
    from autospace_nni.space.supernet import SuperCell
    sk = Skeleton.preset('tiny-8')
    arch = Architecture.uniform(sk, reference_cell(sk))
    params = arch.cost().params
    spec = sk.blocks()[0]
    cell = Cell.parse('e6_relu6:0-1=dw3x3')
    # just enough for the network: everything builds
    monkeypatch.setenv('AUTOSPACE_MAX_BUILD_BYTES', str(params * BYTES_PER_PARAM))
    arch.build()
    # one parameter short: refused, and nothing was allocated on the way (the check comes first)
    monkeypatch.setenv('AUTOSPACE_MAX_BUILD_BYTES', str(params * BYTES_PER_PARAM - 1))
    made = []
    monkeypatch.setattr(torch.nn.Conv2d, '__init__', lambda *a, **k: made.append(a) or (_ for _ in ()).throw(
        AssertionError('a layer was built')))
    with pytest.raises(ResourceError, match=f'{params:,} parameters'):
        arch.build()
    monkeypatch.setenv('AUTOSPACE_MAX_BUILD_BYTES', '1000')
    with pytest.raises(ResourceError, match='cell e6_relu6:0-1=dw3x3 on'):
        cell.build(spec.c_in, spec.c_out, spec.stride)
    with pytest.raises(ResourceError, match=f'weight pool of block {spec.label}'):
        SuperCell(spec, max_nodes=4, ops=['dw3x3', 'dw5x5'], expand_choices=[3, 6])
    with pytest.raises(ResourceError, match="model space of skeleton 'tiny-8'"):
        manual_space(sk).model_space()
    assert made == []
