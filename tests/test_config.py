"""One option set: AutoSpaceConfig is where every option's default, range and doc live, and the strategy,
the command line, YAML files and old run folders all read it."""

import argparse
import dataclasses
import inspect
import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from autospace_nni import AutoSpace
from autospace_nni.config import AutoSpaceConfig, OLD_NAMES, add_arguments, given as given_options, rename_old
from autospace_nni.pipeline import EvolveConfig, RUN_DEFAULTS, load_run_config

FIELDS = {f.name: f for f in dataclasses.fields(AutoSpaceConfig)}


def test_every_option_is_the_strategys_with_the_same_default():
    sig = inspect.signature(AutoSpace)
    for name, f in FIELDS.items():
        assert sig.parameters[name].default == f.default, name
        assert f.metadata['doc'] and name in AutoSpace.__doc__   # documented, from the one place
    s = AutoSpace()
    assert set(s.options()) == set(FIELDS)
    assert s.options()['population_size'] == 64 and s.options()['ops'] == list(FIELDS['ops'].default)


@pytest.mark.parametrize('name,value', [
    ('population_size', 0), ('population_size', 2.0), ('population_size', True), ('sample_k', -1),
    ('beta', 1.0), ('beta', math.nan), ('p_mutation', 1.5), ('budget_madds', math.inf), ('budget_madds', 0),
    ('n_nodes', 1), ('n_nodes', 11), ('fitness', 'nope'), ('budget_penalty', 'max'), ('replacement', 'best'),
    ('ops', []), ('ops', ['none']), ('expand_choices', [0]), ('reference', 'e6_relu6:0-1=nope'),
    ('rollback_lr_factor', 1.0), ('arc_learning_rate', -1e-3), ('seed', -1), ('iterations', 0),
    ('gradient_clip_val', math.nan), ('arc_betas', [0.5]), ('seed_cells', ['not a cell'])])
def test_bad_values_are_refused_in_one_line_naming_the_option(name, value):
    with pytest.raises(ValueError, match=name) as e:
        AutoSpace(**{name: value})
    assert '\n' not in str(e.value)


def test_relations_and_unknown_names():
    with pytest.raises(ValueError, match=r'sample_k \(5\) cannot exceed population_size \(4\)'):
        AutoSpaceConfig(population_size=4, sample_k=5)
    with pytest.raises(TypeError, match="did you mean 'population_size'"):
        AutoSpace(populaton_size=8)
    cfg = AutoSpaceConfig(population_size=8, sample_k=2)
    assert AutoSpace(cfg, sample_k=3).sample_k == 3 and AutoSpace(cfg).population_size == 8


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.floats(allow_nan=True, allow_infinity=True))
def test_a_config_is_built_only_when_every_value_is_in_range(p, k, beta):
    ok = k <= p and math.isfinite(beta) and 0 <= beta < 1
    if ok:
        c = AutoSpaceConfig(population_size=p, sample_k=k, beta=beta)
        assert (c.population_size, c.sample_k, c.beta) == (p, k, beta)
    else:
        with pytest.raises(ValueError):
            AutoSpaceConfig(population_size=p, sample_k=k, beta=beta)


def test_the_command_line_has_one_flag_per_option_and_the_old_names():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {s for a in parser._actions for s in a.option_strings}
    for name, f in FIELDS.items():
        if f.metadata['cli'] is not None:
            assert f'--{name.replace("_", "-")}' in flags
    for old in OLD_NAMES:
        assert f'--{old.replace("_", "-")}' in flags
    args = parser.parse_args(['--population', '8', '--warmup', '1', '--arc-lr', '0.01', '--penalty', 'none',
                              '--no-hard-filter', '--ops', 'dw3x3', 'skip', '--reference', 'none'])
    assert given_options(args) == {'population_size': 8, 'warmup_iterations': 1, 'arc_learning_rate': 0.01,
                                   'budget_penalty': None, 'hard_filter': False, 'ops': ['dw3x3', 'skip'],
                                   'reference': None}
    assert given_options(parser.parse_args([])) == {}                 # nothing given: nothing set
    with pytest.raises(ValueError, match="population_size: 'population' and 'population_size' are the same option"):
        rename_old({'population': 8, 'population_size': 8})


def test_run_folders_of_the_flat_format_still_load(tmp_path):
    # a run.json written before the options had one name (flat config, old names)
    old = {'dataset': 'digits', 'data_dir': None, 'skeleton': 'tiny-8', 'grouping': 'stage', 'iterations': 4,
           'seed': 1, 'population': 8, 'sample_k': 2, 'tournament_size': 4, 'p_mutation': 0.5, 'beta': 0.7,
           'top_m': 6, 'patience': 0, 'warmup': 1, 'reference': 'default', 'budget_madds': None,
           'penalty': 'mul#log', 'hard_filter': True, 'n_nodes': 4, 'path_mode': 'sample', 'arc_lr': 0.03,
           'lr': 0.05, 'batch_size': 32, 'limit': None, 'device': 'cpu', 'devices': 1, 'max_rollbacks': 3,
           'rollback_lr_factor': 0.5}
    (tmp_path / 'run.json').write_text(json.dumps({'config': old}))
    cfg = load_run_config(tmp_path)
    assert cfg.batch_size == 32 and cfg.population_size == 8 and cfg.warmup_iterations == 1
    assert cfg.arc_learning_rate == 0.03 and cfg.fitness == 'alpha-gates' and cfg.seed == 1
    kw = cfg.strategy_kwargs()
    assert AutoSpace(**kw).options()['warmup_iterations'] == 1
    # today's format round-trips
    new = EvolveConfig.from_flat(population_size=8, sample_k=2)
    (tmp_path / 'run.json').write_text(json.dumps({'config': dataclasses.asdict(new)}))
    again = load_run_config(tmp_path)
    assert again == new and again.options == {**RUN_DEFAULTS, 'population_size': 8, 'sample_k': 2}
    with pytest.raises(ValueError, match='unknown evolve options nope'):
        EvolveConfig.from_flat(nope=1)
