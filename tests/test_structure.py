"""The package's structure: no import cycles among its modules (a lazy import inside a function counts),
and no module far over the size one idea needs."""

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / 'autospace_nni'


def _module(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path, modules: set) -> set:
    """Every package module ``path`` imports, at any depth of its code (TYPE_CHECKING blocks excepted)."""
    name = _module(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):   # `if TYPE_CHECKING:` imports never run
        if isinstance(node, ast.If) and getattr(node.test, 'id', None) == 'TYPE_CHECKING':
            skip |= {id(n) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition('.')[0]
            target = node.module if node.level == 0 else '.'.join(p for p in (base, node.module) if p)
            for alias in node.names:   # `from . import x` may name a module
                full = f'{target}.{alias.name}'
                out.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m in modules and m != name}


def _graph() -> nx.DiGraph:
    files = [p for p in PKG.rglob('*.py')]
    modules = {_module(p) for p in files}
    g = nx.DiGraph()
    for p in files:
        if p.name == '__init__.py':
            continue   # a package's __init__ re-exports; importing a submodule runs it, but it imports no parent
        for m in _imports(p, modules):
            if not m.endswith('__init__') and m in modules and not (PKG.parent / (m.replace('.', '/'))).is_dir():
                g.add_edge(_module(p), m)
    return g


def test_the_import_graph_has_no_cycle():
    g = _graph()
    assert g.number_of_edges() > 50   # the graph was read at all
    assert ('autospace_nni.space.learned', 'autospace_nni.space.layout') in g.edges
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], 'import cycles: ' + '; '.join(' -> '.join(c + c[:1]) for c in cycles)


def test_the_layout_kinds_meet_one_interface():
    from autospace_nni.space.layout import Layout, AdoptedLayout
    from autospace_nni.space.skeleton import Skeleton
    for cls in (Skeleton, AdoptedLayout):
        missing = [n for n in ('blocks', 'groups', 'labels', 'outside_cost', 'candidates_of', 'user_name',
                               'check_sample', 'to_dict', 'kind') if not hasattr(cls, n)]
        assert missing == [], f'{cls.__name__} lacks {missing}'
    assert isinstance(Skeleton.preset('tiny-8'), Layout)


def test_no_module_is_far_over_one_idea():
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob('*.py')}
    assert len(sizes) > 30
    assert {k: v for k, v in sizes.items() if v > 450} == {}


def test_every_sub_command_has_a_runner():
    import argparse
    from autospace_nni.cli import COMMANDS
    from autospace_nni.cli_parser import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS) and 'evolve' in COMMANDS
