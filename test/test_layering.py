"""The package's layering, read from its source: no import cycle, no core module that imports a
ROS, node, benchmark or evaluation module, a model that never imports training, and no module
that imports another's private names or reads another object's private attributes (the
package's and the tests' code alike: what a module or a test needs of another object is public).

Every import counts, at module level or inside a function, and so does an
``importlib.import_module('lipfault_ros...')`` string: a lazy import still makes a cycle once
both ends have run. A submodule's implicit import of its own package (``__init__``) is not an
edge: re-exporting a package's modules from its ``__init__`` is how subpackages are written here.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'lipfault_ros'
#: the layers above the core: they may import the core, never the other way round
UPPER = tuple(f'{PACKAGE}.{name}' for name in (
    'ros', 'nodes', 'bench', 'evaluation', 'view', 'blackbox', 'cli', 'train_cli'))


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + '.') for p in packages)


def _modules(package_dir: Path) -> dict[str, Path]:
    out = {}
    for path in package_dir.rglob('*.py'):
        parts = list(path.relative_to(package_dir.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        out['.'.join(parts)] = path
    return out


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> the package modules it imports, the private names imported across modules)."""
    modules = _modules(package_dir)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition('.')[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
                if node.module.startswith(PACKAGE):
                    private += [f'{module} imports {node.module}.{a.name}' for a in node.names
                                if a.name.startswith('_')]
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant)
                  and getattr(node.func, 'attr', getattr(node.func, 'id', None)) == 'import_module'):
                targets = [str(node.args[0].value)]
            for target in targets:
                found = resolve(target) if target.startswith(PACKAGE) else None
                if found is not None and found != module:
                    edges[module].add(found)
    return edges, private


#: foreign private attributes read on purpose, (file, attribute): why
ALLOWED_PRIVATE = {
    ('shutdown.py', '_executor'): "rclpy's MultiThreadedExecutor keeps its worker pool "
                                  'private, and its queued callbacks must finish before the '
                                  'executor shuts down (ros/shutdown.py says why)',
}


def _own(value: ast.expr) -> bool:
    return isinstance(value, ast.Name) and value.id in ('self', 'cls')


def _private(name: str) -> bool:
    return name.startswith('_') and not name.startswith('__')


def foreign_private_attributes(paths: list[Path]) -> list[str]:
    """``obj._name``, and ``getattr`` / ``hasattr`` / ``setattr`` / ``delattr(obj, '_name')``,
    where ``obj`` is not ``self`` or ``cls``: one object reading another's private state
    (dunder names and :data:`ALLOWED_PRIVATE` excepted)."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = None
            if isinstance(node, ast.Attribute) and not _own(node.value):
                name = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ('getattr', 'hasattr', 'setattr', 'delattr')
                  and len(node.args) >= 2 and not _own(node.args[0])
                  and isinstance(node.args[1], ast.Constant)
                  and isinstance(node.args[1].value, str)):
                name = node.args[1].value
            if name is not None and _private(name) and \
                    (path.name, name) not in ALLOWED_PRIVATE:
                found.append(f'{path.name}:{node.lineno} reads .{name}')
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def forbidden_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            if not _under(module, UPPER) and _under(target, UPPER):
                bad.append(f'core {module} imports {target}')
            if _under(module, (f'{PACKAGE}.model',)) and _under(target, (f'{PACKAGE}.training',)):
                bad.append(f'{module} (model) imports {target} (training)')
    return bad


def test_the_package_has_no_cycle_no_upward_edge_and_no_private_import():
    edges, private = import_graph(ROOT / PACKAGE)
    assert len(edges) > 100 and sum(map(len, edges.values())) > 300  # the graph was read
    assert cycles(edges) == []
    assert forbidden_edges(edges) == []
    assert private == []


def test_no_code_reads_another_objects_private_attributes():
    paths = sorted((ROOT / PACKAGE).rglob('*.py')) + sorted((ROOT / 'test').rglob('*.py'))
    assert len(paths) > 150
    assert foreign_private_attributes(paths) == []


#: module names every concept may have, each holding the same kind of thing for its package
SHARED_NAMES = {'__init__', '__main__', 'cli', 'config'}


def test_no_two_modules_share_a_name_for_different_things():
    """Outside the per-package conventions (a package's ``cli`` and ``config``), a module's
    name is unique in the package, so a name alone says which module is meant."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / PACKAGE).rglob('*.py')):
        seen.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    shared = {name: where for name, where in seen.items()
              if len(where) > 1 and name not in SHARED_NAMES}
    assert shared == {}


def test_a_private_attribute_read_is_caught(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text('class A:\n    def f(self, other):\n        self._mine = 1\n'
                     '        return other._theirs, other.__class__, type(self)._count\n'
                     '    def g(self, other):\n'
                     '        return getattr(other, \'_hidden\', None), getattr(self, \'_ok\'), '
                     'hasattr(other, \'__dict__\'), getattr(other, \'public\')\n')
    assert foreign_private_attributes([probe]) == ['probe.py:4 reads ._theirs',
                                                    'probe.py:4 reads ._count',
                                                    'probe.py:6 reads ._hidden']


def test_a_cycle_through_a_temporary_module_is_caught(tmp_path):
    """The same checks on a copy of the package with one deliberate cycle, one lazy upward
    import and one private import added: each is reported, by name."""
    copy = tmp_path / PACKAGE
    shutil.copytree(ROOT / PACKAGE, copy, ignore=shutil.ignore_patterns('__pycache__'))
    (copy / 'cycle_probe.py').write_text(
        'import importlib\n\nfrom lipfault_ros.errors import ConfigError\n\n\n'
        'def later():\n    from lipfault_ros.nodes.pipeline import PipelineNode\n'
        '    from lipfault_ros.alarm import _private\n'
        "    return importlib.import_module('lipfault_ros.tuples')\n")
    errors = copy / 'errors.py'
    errors.write_text(errors.read_text() + '\n\ndef _probe():\n    import lipfault_ros.cycle_probe\n')
    edges, private = import_graph(copy)
    assert any({'lipfault_ros.cycle_probe', 'lipfault_ros.errors'} <= set(c) for c in cycles(edges))
    assert 'lipfault_ros.tuples' in edges['lipfault_ros.cycle_probe']  # the importlib string
    assert 'core lipfault_ros.cycle_probe imports lipfault_ros.nodes.pipeline' in \
        forbidden_edges(edges)
    assert private == ['lipfault_ros.cycle_probe imports lipfault_ros.alarm._private']
