"""Every stage of dvc.yaml depends on exactly the project files its command imports.

DVC reruns a stage only when a dependency changed, so a file the stage imports but does not list is a
stale result waiting to happen, and a file it lists but never imports reruns it for nothing. The import
closure is read from the source: the stage's module (``python -m stages.<name>``), then every ``lablib``
or ``stages`` module it imports, at the top or inside a function, with the ``__init__.py`` of each
package on the way (importing ``lablib.a.b`` runs ``lablib/__init__.py`` and ``lablib/a/__init__.py``).
A module-level table mapping each framework to ``"module:name"`` (how a stage loads one framework's
code only) is followed for the framework the stage's command names, or for all when it names none.
"""

from __future__ import annotations

import ast
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from lablib.params import FRAMEWORKS

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lablib", "stages")
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    """The project file of a dotted module name (a package's ``__init__.py``), or None if not the project's."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _framework_table(node: ast.stmt) -> dict[str, str] | None:
    """``{framework: "module:name"}`` if ``node`` assigns such a dict literal, else None."""
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    if not isinstance(value, ast.Dict) or not value.keys:
        return None
    try:
        pairs = zip(value.keys, value.values, strict=True)
        table = {ast.literal_eval(key): ast.literal_eval(item) for key, item in pairs}
    except ValueError:
        return None
    if set(table) <= set(FRAMEWORKS) and all(isinstance(v, str) and ":" in v for v in table.values()):
        return {framework: target.split(":")[0] for framework, target in table.items()}
    return None


def import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """Each import in ``path``, at the top or inside a function, as ``(module, names imported from it)``:
    ``import a.b`` is ``("a.b", [])``, a relative import is resolved against the file's package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    statements: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            statements.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            statements.append((base, [alias.name for alias in node.names]))
    return statements


@cache
def imports_of(path: Path) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """The modules ``path`` imports (with their parent packages), and its framework tables as
    ``(framework, module)`` pairs."""
    found: set[str] = set()
    for base, names in import_statements(path):
        found.update(_with_parents(base))
        found.update(f"{base}.{name}" for name in names if module_file(f"{base}.{name}"))
    tree = ast.parse(path.read_text(), filename=str(path))
    tables = [(fw, module) for node in tree.body if (table := _framework_table(node)) for fw, module in table.items()]
    return frozenset(found), tuple(tables)


def import_closure(module: str, framework: str | None) -> set[str]:
    """Repository-relative paths of every project file that importing ``module`` runs."""
    pending, seen = list(_with_parents(module)), set()
    files: set[str] = set()
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        files.add(path.relative_to(REPO).as_posix())
        imported, tables = imports_of(path)
        pending.extend(imported)
        pending.extend(parent for fw, target in tables if framework in (None, fw) for parent in _with_parents(target))
    return files


def stage_command(stage: dict) -> tuple[str, str | None]:
    """The module of a ``python -m <module> ...`` command and the framework among its arguments, if any."""
    args = shlex.split(stage["cmd"])
    module = args[args.index("-m") + 1]
    framework = next((arg for arg in args[args.index("-m") + 2 :] if arg in FRAMEWORKS), None)
    return module, framework


def is_code(dep: str) -> bool:
    """A dependency inside the project's code folders (a file or a whole folder)."""
    return dep.split("/")[0] in PACKAGES


def test_import_closure_follows_function_level_imports_packages_and_framework_tables():
    train_numpy = import_closure("stages.train", "numpy")
    assert {"stages/__init__.py", "lablib/__init__.py", "lablib/train/__init__.py", "lablib/train/run.py"} <= (
        train_numpy
    )
    assert "lablib/train/numpy_backend.py" in train_numpy
    assert "lablib/train/torch_backend.py" not in train_numpy
    assert "lablib/train/torch_backend.py" in import_closure("stages.train", "torch")
    evaluate_numpy = import_closure("stages.evaluate", "numpy")
    assert "lablib/models/numpy_model.py" in evaluate_numpy and "lablib/models/torch_model.py" not in evaluate_numpy


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_exactly_its_imports(name):
    stage = STAGES[name]
    module, framework = stage_command(stage)
    closure = import_closure(module, framework)
    declared = [dep for dep in stage.get("deps", [])]
    missing = sorted(closure - set(declared))
    extra = sorted(dep for dep in declared if is_code(dep) and dep not in closure)
    if missing or extra:
        data = [dep for dep in declared if not is_code(dep)]
        paste = "\n".join(f"      - {dep}" for dep in [*sorted(closure), *data])
        problems = [f"{name} imports {path}, which its deps lack" for path in missing]
        problems += [f"{name} lists {dep}, which it does not import" for dep in extra]
        pytest.fail("\n".join(problems) + f"\nThe deps of {name} in dvc.yaml should read:\n    deps:\n{paste}")


def test_report_depends_on_the_series_tables_it_includes():
    assert "reports/experiments" in STAGES["report"]["deps"]


CHECKER = "lablib/gradcheck/"


def test_no_stage_depends_on_the_gradient_checker():
    """The checker (every file under lablib/gradcheck/, its heuristics for students' names among them) can
    change without making any result stale: no stage imports it, so DVC reruns nothing."""
    checker_files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / CHECKER).rglob("*.py"))
    assert len(checker_files) > 3, "the checker moved: point CHECKER at it"
    for name, stage in STAGES.items():
        module, framework = stage_command(stage)
        reached = import_closure(module, framework) | set(stage.get("deps", []))
        assert not [path for path in reached if path.startswith(CHECKER)], f"{name} depends on the checker"


def module_edges(path: Path) -> set[str]:
    """The project modules ``path`` imports by name (a package's ``__init__``, not every parent package)."""
    found: set[str] = set()
    for base, names in import_statements(path):
        submodules = [f"{base}.{name}" for name in names if module_file(f"{base}.{name}")]
        found.update(submodules)
        if len(submodules) < len(names) or not names:
            found.add(base)
    return {name for name in found if module_file(name)}


def test_the_project_has_no_import_cycle():
    """No module of lablib/ or stages/ imports itself through others, at the top or inside a function."""
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
    }
    graph = {name: {m for m in module_edges(path) if m != name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph.get(name, ())):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
