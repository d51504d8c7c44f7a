"""Every option of the AutoSpace strategy, defined once: its name, default, valid range and one line of doc.

:class:`AutoSpaceConfig` is the single source. ``AutoSpace(...)`` takes its fields as keyword arguments (and
documents them from here), ``autospace-nni evolve`` generates one flag per field (:func:`add_arguments`),
and YAML config files, ``run.json`` and NNI trial parameters use the same names. A few names of earlier
versions are still read (:data:`OLD_NAMES`). Values are checked when the config is built: a bad value, a NaN
or a wrong type raises ``ValueError`` naming the option and its valid range.

This module does not import NNI, so the command line builds its parser quickly.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import math
from typing import Any, Callable, Dict, Optional, Tuple

from .cells.genome import ACT_CHOICES, DEFAULT_OPS, EXPAND_CHOICES, MAX_NODES, SE_CHOICES
from .errors import OptionError
from .fitness import DEFAULT_FITNESS, FITNESS_ESTIMATORS

__all__ = ['AutoSpaceConfig', 'OLD_NAMES', 'PENALTY_MODES', 'add_arguments', 'given', 'rename_old', 'options_doc']

#: the budget penalty's aggregations (ProxylessNAS's ``mul#log``, NNI's ``add`` and ``mul``)
PENALTY_MODES = ('mul#log', 'add', 'mul')

#: option names of earlier versions (CLI flags, YAML keys, run.json) -> today's
OLD_NAMES = {'population': 'population_size', 'warmup': 'warmup_iterations', 'arc_lr': 'arc_learning_rate',
             'penalty': 'budget_penalty'}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(low: int, high: Optional[int] = None, optional: bool = False):
    rule = f'an integer >= {low}' + (f' and <= {high}' if high is not None else '') + (' or None' if optional else '')
    return (lambda v: (optional and v is None) or (_is_int(v) and v >= low and (high is None or v <= high))), rule


def _real(low: float, high: float = math.inf, *, low_open=False, high_open=False, optional=False):
    lo, hi = '(' if low_open else '[', ')' if high_open or high == math.inf else ']'
    rule = f'a finite number in {lo}{low:g}, {high:g}{hi}' + (' or None' if optional else '')

    def check(v):
        if optional and v is None:
            return True
        return (_is_real(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high))
    return check, rule


def _choice(*values, optional=False):
    return (lambda v: v in values or (optional and v is None)), ('one of ' + ', '.join(map(repr, values))
                                                                 + (' or None' if optional else ''))


def _seq(item_check: Callable, what: str, length: Optional[int] = None):
    def check(v):
        return (isinstance(v, (list, tuple)) and (len(v) == length if length else len(v) > 0)
                and all(item_check(x) for x in v))
    return check, (f'a list of {length} {what}' if length else f'a non-empty list of {what}')


def _any(rule: str = ''):
    return (lambda v: True), rule


def _cell_ok(v) -> bool:
    from .cells.genome import Cell
    if isinstance(v, Cell):
        return True
    if not isinstance(v, str):
        return False
    Cell.parse(v)     # a bad cell text raises its own one-line error (the bad token or edge)
    return True


def _reference():
    def check(v):
        if v is None or v == 'default':
            return True
        if isinstance(v, str) and ':' not in v:      # a network name: one of ours, or not one we have
            from .presets import NETWORK_PRESETS
            return v in NETWORK_PRESETS
        if isinstance(v, dict):
            return all(isinstance(g, str) and _cell_ok(c) for g, c in v.items())
        return _cell_ok(v)
    return check, "'default', None, a network preset (efficientnet-b0, ...), a cell text or {group: cell text}"


def _seed_cells():
    def check(v):
        if v is None:
            return True
        if isinstance(v, dict):
            return all(isinstance(g, str) and isinstance(cs, (list, tuple)) and all(map(_cell_ok, cs))
                       for g, cs in v.items())
        return isinstance(v, (list, tuple)) and all(map(_cell_ok, v))
    return check, 'None, a list of cell texts or {group: [cell texts]}'


def _opt(default, doc: str, valid=_any(), *, cli: Optional[type] = None, many: bool = False):
    """One option: ``valid`` is (check, rule); ``cli`` the command line's type (None: not a flag)."""
    check, rule = valid
    return dataclasses.field(default=default, metadata={'doc': doc, 'check': check, 'rule': rule, 'cli': cli,
                                                        'many': many})


@dataclasses.dataclass(frozen=True)
class AutoSpaceConfig:
    """The AutoSpace strategy's options (docs/method.md explains the method behind each one)."""

    # evolution
    population_size: int = _opt(64, 'P, cells per layer group', _int(1), cli=int)
    sample_k: int = _opt(4, 'K, cells sampled per group per iteration (<= population_size)', _int(1), cli=int)
    tournament_size: int = _opt(8, 's, members drawn per tournament', _int(1), cli=int)
    p_mutation: float = _opt(0.5, 'probability that a tournament winner is replaced by a local mutation of itself',
                             _real(0, 1), cli=float)
    replacement: str = _opt('oldest', "who leaves when a child joins: 'oldest' (regularized evolution) or 'worst'",
                            _choice('oldest', 'worst'), cli=str)
    beta: float = _opt(0.7, 'fitness moving-average factor of Eqn 5', _real(0, 1, high_open=True), cli=float)
    initial_fitness: float = _opt(1.0, 'fitness of the initial random cells (1.0 = as good as the reference)',
                                  _real(0), cli=float)
    # what random cells and mutations draw from
    n_nodes: int = _opt(4, 'nodes of random cells', _int(2, MAX_NODES), cli=int)
    ops: Tuple[str, ...] = _opt(DEFAULT_OPS, 'edge primitives random cells and mutations draw from (not none)',
                                _seq(lambda o: isinstance(o, str) and o != 'none', 'primitive names other than none'),
                                cli=str, many=True)
    expand_choices: Tuple[int, ...] = _opt(EXPAND_CHOICES, 'expand ratios to draw from',
                                           _seq(lambda e: _is_int(e) and 1 <= e <= 16, 'integers in [1, 16]'),
                                           cli=int, many=True)
    act_choices: Tuple[str, ...] = _opt(ACT_CHOICES, 'activations to draw from',
                                        _seq(lambda a: isinstance(a, str), 'activation names'), cli=str, many=True)
    se_choices: Tuple[bool, ...] = _opt(SE_CHOICES, 'squeeze-excite on/off choices to draw from',
                                        _seq(lambda s: isinstance(s, bool), 'booleans'))
    edge_prob: float = _opt(0.3, 'probability of each extra edge of a random cell', _real(0, 1), cli=float)
    # the reference and the learned space
    reference: Any = _opt('default', "the reference cell: 'default' (MBConv k3 e6 in every group), None (the "
                          "ablation: no seeding, no reference branch), a network preset on its own skeleton "
                          "(efficientnet-b0: each group's cell in that network), a cell text, or {group: cell}",
                          _reference(), cli=str)
    keep_reference: bool = _opt(True, 'also list the reference cells in the learned space', _choice(True, False),
                                cli=bool)
    seed_cells: Any = _opt(None, 'cells that join every initial population before the random ones (cell texts), '
                           'or {group: [cells]}', _seed_cells(), cli=str, many=True)
    top_m: int = _opt(6, 'M, cells per group in the learned space', _int(1), cli=int)
    min_evals: int = _opt(2, 'scores a cell needs of its own before it may enter the learned top-M', _int(1),
                          cli=int)
    final_iterations: Optional[int] = _opt(None, 'last iterations that re-score each group\'s finalists (K per '
                                           'iteration, no mutation); None = ceil(top_m / sample_k)',
                                           _int(0, optional=True), cli=int)
    # fitness
    fitness: str = _opt(DEFAULT_FITNESS, 'the fitness estimator (autospace_nni/fitness.py); the default is the '
                        'one measured best', _choice(*FITNESS_ESTIMATORS), cli=str)
    eval_images: int = _opt(256, "held-out images of paired-eval's evaluation (a fresh seeded draw each "
                            'iteration)', _int(1), cli=int)
    # schedule
    patience: int = _opt(3, 'end the main phase once every top-M set is unchanged this many iterations '
                         '(0 = never)', _int(0), cli=int)
    iterations: Optional[int] = _opt(None, "T, final iterations included; None = the trainer's max_epochs",
                                     _int(1, optional=True), cli=int)
    warmup_iterations: int = _opt(2, 'W, weight-only iterations with uniform path weights', _int(0), cli=int)
    steps_per_iteration: Optional[int] = _opt(None, 'optimizer steps per iteration; None = one pass over the '
                                              'training split', _int(1, optional=True), cli=int)
    # α (the alpha-* estimators)
    arc_learning_rate: float = _opt(1e-3, 'Adam learning rate of α', _real(0, low_open=True), cli=float)
    arc_betas: Tuple[float, float] = _opt((0.0, 0.999), 'Adam betas of α',
                                          _seq(lambda b: _is_real(b) and 0 <= b < 1, 'numbers in [0, 1)', 2),
                                          cli=float, many=True)
    arc_weight_decay: float = _opt(0.0, 'Adam weight decay of α', _real(0), cli=float)
    # budget
    budget_madds: Optional[float] = _opt(None, 'MAdds target of the whole network; None = no budget',
                                         _real(0, low_open=True, optional=True), cli=float)
    budget_penalty: Optional[str] = _opt('mul#log', "the penalty on α: 'mul#log' (ProxylessNAS), 'add' or 'mul' "
                                         "(NNI's), None = the hard filter only", _choice(*PENALTY_MODES, optional=True),
                                         cli=str)
    budget_beta: float = _opt(0.3, "β of mul#log", _real(0, low_open=True), cli=float)
    budget_scale: float = _opt(1.0, 'scale of add / mul', _real(0, low_open=True), cli=float)
    hard_filter: bool = _opt(True, 'reject a cell only when no network that uses it in its group fits the budget, '
                             'with the cheapest candidates elsewhere', _choice(True, False), cli=bool)
    filter_slack: float = _opt(1.0, 'multiplier on the budget in the hard filter', _real(0, low_open=True), cli=float)
    # numerical faults
    max_rollbacks: int = _opt(3, 'NaN/inf faults survived by rolling back to the last checkpoint', _int(0), cli=int)
    rollback_lr_factor: float = _opt(0.5, 'learning-rate multiplier per rollback',
                                     _real(0, 1, low_open=True, high_open=True), cli=float)
    gradient_clip_val: Optional[float] = _opt(None, 'gradient clipping of the weight step',
                                              _real(0, low_open=True, optional=True), cli=float)
    # adoption and randomness
    input_shape: Optional[Tuple[int, ...]] = _opt(None, "one example's shape (C, H, W), only to adopt a user's own "
                                                  "ModelSpace; None = from the evaluator's data")
    seed: Optional[int] = _opt(None, "seed of the evolution's numpy RandomState", _int(0, optional=True), cli=int)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):             # lists (from YAML or JSON) are stored as tuples
                object.__setattr__(self, f.name, value := tuple(value))
            try:
                ok = f.metadata['check'](value)
            except ValueError as e:
                raise OptionError(f.name, f': {e}') from None
            if not ok:
                raise OptionError(f.name, f' must be {f.metadata["rule"]}, got {value!r}')
        if self.sample_k > self.population_size:
            raise OptionError('sample_k', f' ({self.sample_k}) cannot exceed population_size ({self.population_size})')

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def resolved_final_iterations(self) -> int:
        return -(-self.top_m // self.sample_k) if self.final_iterations is None else self.final_iterations

    @classmethod
    def merged(cls, config: Optional['AutoSpaceConfig'], options: Dict[str, Any], *,
               owner: str = 'AutoSpace') -> 'AutoSpaceConfig':
        """``config`` (or the defaults) with ``options`` over it: a ``TypeError`` for an unknown name (with
        the closest known one), an :class:`~autospace_nni.errors.OptionError` for a bad value."""
        names = set(cls.names())
        unknown = sorted(k for k in options if k not in names)
        if unknown:
            close = {k: difflib.get_close_matches(k, names, 1) for k in unknown}
            raise TypeError(f'{owner} got unknown options ' + ', '.join(
                f'{k!r}' + (f' (did you mean {close[k][0]!r}?)' if close[k] else '') for k in unknown))
        return dataclasses.replace(config, **options) if config is not None else cls(**options)


def rename_old(options: Dict[str, Any]) -> Dict[str, Any]:
    """``options`` with the names of earlier versions (:data:`OLD_NAMES`) replaced by today's."""
    out, given_as = {}, {}
    for key, value in options.items():
        new = OLD_NAMES.get(key, key)
        if new in out:
            raise OptionError(new, f': {given_as[new]!r} and {key!r} are the same option; give it once')
        out[new], given_as[new] = value, key
    return out


def options_doc() -> str:
    """The options as a numpydoc ``Parameters`` section (what ``help(AutoSpace)`` shows)."""
    lines = ['Parameters', '----------']
    for f in dataclasses.fields(AutoSpaceConfig):
        lines += [f'{f.name} (default {f.default!r}; {f.metadata["rule"] or "see the text"})',
                  f'    {f.metadata["doc"]}.']
    return '\n'.join(lines)


def keyword_signature(*, before=(), after=()) -> inspect.Signature:
    """A signature with every option as a keyword-only parameter at its default, between the parameters
    ``before`` and ``after`` (what ``help()`` and IDEs show for a constructor taking ``**options``)."""
    return inspect.Signature([*before, *(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
                                         for f in dataclasses.fields(AutoSpaceConfig)), *after])


def ranged(kind, valid) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, which must pass ``valid`` (a check and its rule, as the options'
    ranges are written, e.g. ``ranged(int, integer(1))``); otherwise argparse's error names the flag and the rule."""
    check, rule = valid

    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f'must be {rule}, got {text!r}') from None
        if not check(value):
            raise argparse.ArgumentTypeError(f'must be {rule}, got {text!r}')
        return value
    parse.__name__ = rule
    return parse


#: the range rules, for :func:`ranged`
integer, number = _int, _real


def _none_or(kind):
    def parse(text: str):
        if isinstance(text, str) and text.lower() in ('none', 'null'):
            return None
        return kind(text)
    parse.__name__ = kind.__name__
    return parse


def given(args: argparse.Namespace) -> Dict[str, Any]:
    """The AutoSpace options present in ``args`` (given as flags or by a config file)."""
    return {name: getattr(args, name) for name in AutoSpaceConfig.names() if hasattr(args, name)}


def add_arguments(parser: argparse.ArgumentParser, *, skip=()) -> None:
    """One flag per option with a command-line type: ``--population-size``, ``--hard-filter/--no-hard-filter``,
    ``--ops dw3x3 dw5x5``; the old names (``--population``, ``--warmup``, ``--arc-lr``, ``--penalty``) still
    work. A flag not given is absent from the namespace (``argparse.SUPPRESS``), so a caller can tell given
    flags from presets; ``none`` gives None where an option allows it."""
    old = {new: old for old, new in OLD_NAMES.items()}
    group = parser.add_argument_group('AutoSpace options (autospace_nni/config.py)')
    for f in dataclasses.fields(AutoSpaceConfig):
        kind = f.metadata['cli']
        if kind is None or f.name in skip:
            continue
        flags = [f'--{f.name.replace("_", "-")}'] + ([f'--{old[f.name].replace("_", "-")}'] if f.name in old else [])
        default = f.default if not isinstance(f.default, tuple) else ' '.join(map(str, f.default))
        help_text = f'{f.metadata["doc"]} (default: {default})'.replace('%', '%%')
        if kind is bool:
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        elif f.metadata['many']:
            group.add_argument(*flags, dest=f.name, type=kind, nargs='+', default=argparse.SUPPRESS,
                               help=help_text)
        else:
            group.add_argument(*flags, dest=f.name, type=_none_or(kind), default=argparse.SUPPRESS,
                               help=help_text)
