"""Fuzzing of the learned-space loader: random and corrupted documents either load or raise
:class:`LearnedSpaceError`; nothing else escapes."""

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autospace_nni.errors import LearnedSpaceError
from autospace_nni.space import Skeleton
from autospace_nni.space.learned import LearnedSpace, manual_space

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _valid_doc(kind='skeleton'):
    if kind == 'skeleton':
        return manual_space(Skeleton.preset('tiny-8')).to_dict()
    return _adopted_doc()


def _adopted_doc():
    """A space learned on a user's model space (examples/hello_nas_space.py): its user's candidates, named."""
    if not _ADOPTED:
        import sys
        from pathlib import Path
        from autospace_nni.space.adopted import adopt
        from autospace_nni.space.learned import LearnedCell
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
        from hello_nas_space import HelloNasSpace
        layout = adopt(HelloNasSpace(), (1, 8, 8)).layout
        groups = {g: [LearnedCell(c, 1.0, True, layout.user_name(g, c)) for c in layout.candidates_of(g)]
                  for g in layout.groups()}
        _ADOPTED.append(LearnedSpace(layout, groups).to_dict())
    return copy.deepcopy(_ADOPTED[0])


_ADOPTED = []


def _paths(node, prefix=()):
    """Every (path) to a value inside a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _load_or_documented_error(doc):
    try:
        space = LearnedSpace.from_dict(doc)
    except LearnedSpaceError as e:
        msg = str(e)
        assert msg and '\n' not in msg, f'error message must be one line: {msg!r}'
        return None
    assert isinstance(space, LearnedSpace)
    # whatever loads must be usable: it round-trips, and its best architecture is priced
    assert LearnedSpace.from_dict(json.loads(json.dumps(space.to_dict()))).to_dict() == space.to_dict()
    space.cost(space.best_sample())
    return space


@SETTINGS
@given(json_values)
def test_random_json_never_escapes(value):
    _load_or_documented_error(value)


@pytest.mark.parametrize('kind', ['skeleton', 'model-space'])
@SETTINGS
@given(data=st.data())
def test_corrupted_document_never_escapes(kind, data):
    doc = _valid_doc(kind)
    paths = list(_paths(doc))[1:]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            action = data.draw(st.sampled_from(['replace', 'delete', 'string', 'number', 'stringify']))
            if action == 'delete' and isinstance(parent, dict):
                del parent[path[-1]]
            elif action == 'string':
                parent[path[-1]] = data.draw(st.text(max_size=20))
            elif action == 'number':   # small, zero, negative, fractional, non-finite and boolean numbers
                parent[path[-1]] = data.draw(st.integers(-3, 3) | st.sampled_from([0.5, 2.5, -1.0, 1e308])
                                             | st.floats() | st.booleans())
            elif action == 'stringify':
                parent[path[-1]] = str(parent[path[-1]])
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue   # an earlier corruption removed this path
    _load_or_documented_error(doc)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 31 - 1))
def test_truncated_or_byte_flipped_file_never_escapes(tmp_path_factory, seed):
    rs = np.random.RandomState(seed)
    raw = bytearray(json.dumps(_valid_doc()).encode())
    if rs.rand() < 0.5:
        raw = raw[:rs.randint(0, len(raw))]
    else:
        for _ in range(rs.randint(1, 6)):
            raw[rs.randint(len(raw))] = rs.randint(256)
    path = tmp_path_factory.mktemp('fuzz') / 'learned_space.json'
    path.write_bytes(bytes(raw))
    try:
        LearnedSpace.load(path)
    except LearnedSpaceError as e:
        assert '\n' not in str(e)


@pytest.mark.parametrize('kind', ['skeleton', 'model-space'])
def test_valid_document_still_loads(kind):
    doc = _valid_doc(kind)
    assert _load_or_documented_error(copy.deepcopy(doc)) is not None


def test_every_documented_error_is_one_line_whatever_it_wraps():
    # what hypothesis found: a corrupted model-space document with a key '\n', wrapped in the error's text
    from autospace_nni.errors import LearnedSpaceError, OptionError
    wrapped = TypeError("LeftAlone.__init__() got an unexpected keyword argument '\n'")
    e = LearnedSpaceError(f'learned space has a malformed model-space description: {wrapped}')
    assert str(e) == "learned space has a malformed model-space description: LeftAlone.__init__() got an " \
                     "unexpected keyword argument ' '"
    o = OptionError('--budget', ': bad\r\nvalue')
    assert str(o) == '--budget: bad value' and o.option == '--budget'


@pytest.mark.parametrize('kind', ['skeleton', 'model-space'])
def test_a_non_finite_number_anywhere_is_a_documented_error(kind):
    # hypothesis found a NaN label in an adopted space's left_alone entry: it loaded, and did not round-trip
    for bad in (float('nan'), float('inf'), -float('inf')):
        doc = _valid_doc(kind)
        doc.setdefault('provenance', {})['deep'] = [{'x': bad}]
        with pytest.raises(LearnedSpaceError, match=r'non-finite number at /provenance/deep/0/x'):
            LearnedSpace.from_dict(doc)
    assert _load_or_documented_error(_valid_doc(kind)) is not None      # the valid document still loads
