"""pyproject.toml declares exactly what the code imports: every third-party import is declared (in the
dependencies for services/parley, in the `train` extra for the training package's own needs, in the `dev`
extra for tests and scripts), and every declared package is imported somewhere."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

from parley.config import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
PACKAGE = REPO_ROOT / "services" / "parley"
TRAINING = PACKAGE / "classifier" / "training"
# Declared for what they do when present, without an import of their own in the code.
USED_WITHOUT_IMPORT = {
    "hiredis": "redis-py's reply parser, loaded by redis-py itself",
    "pytest-asyncio": "pytest plugin (asyncio_mode in pyproject.toml)",
    "pytest-timeout": "pytest plugin (timeout in pyproject.toml)",
    "ruff": "the linter, run as a command",
}


def _dist(requirement: str) -> str:
    return _canonical(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _providers() -> dict[str, str]:
    """Dotted module or regular package name -> the installed distribution whose files hold it (namespace
    packages such as `opentelemetry` or `google` belong to no one distribution and are left out)."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = _canonical(dist.metadata["Name"])
        for file in dist.files or ():
            parts = Path(str(file)).parts
            if ".." in parts or not parts[-1].endswith((".py", ".so", ".pyd")):
                continue
            stem = parts[-1].split(".", 1)[0]
            out.setdefault(".".join([*parts[:-1], stem] if stem != "__init__" else parts[:-1]), name)
    return out


def _imports(path: Path) -> set[str]:
    """Dotted names imported by a file, absolute imports only (`from a import b` gives a.b, which resolves to
    a when b is not a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names}
    first_party = {*sys.stdlib_module_names, "parley"}
    return {n for n in found if n.split(".")[0] not in first_party}


def _distributions(names: set[str], local: set[str] = frozenset()) -> set[str]:
    """The distributions providing `names` (the longest providing prefix of each); names of modules that
    live next to the code (`local`) are left out, and an import nothing installed provides fails."""
    providers = _providers()
    out: set[str] = set()
    for name in names:
        if name.split(".")[0] in local:
            continue
        parts = name.split(".")
        prefixes = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
        provider = next((providers[p] for p in prefixes if p in providers), None)
        assert provider, f"no installed package provides {name}"
        out.add(provider)
    return out


def _files(*roots: Path) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files += [p for p in root.rglob("*.py") if "v1" not in p.relative_to(root).parts[:1]]
    return files


def _scripts() -> list[Path]:
    scripts = (REPO_ROOT / "scripts").iterdir()
    return [p for p in scripts if p.suffix == ".py" or p.read_text().startswith("#!/usr/bin/env python")]


def test_runtime_dependencies_are_what_services_parley_imports() -> None:
    serving = {n for f in _files(PACKAGE) if TRAINING not in f.parents for n in _imports(f)}
    training = {n for f in _files(TRAINING) for n in _imports(f)}
    declared = {_dist(r) for r in PROJECT["dependencies"]}
    train_extra = {_dist(r) for r in PROJECT["optional-dependencies"]["train"]}
    serving_dists = _distributions(serving)
    training_dists = _distributions(training)
    assert serving_dists - declared == set(), "imported by serving code but not declared"
    assert training_dists - declared - train_extra == set(), "imported by training but in no dependency list"
    unused = declared - serving_dists - training_dists - set(USED_WITHOUT_IMPORT)
    assert unused == set(), "declared, never imported"
    assert train_extra - training_dists == set(), "in the train extra, never imported by training"
    assert not (train_extra & serving_dists), "serving code must not need the train extra"


def test_dev_dependencies_are_what_tests_and_scripts_import() -> None:
    tests = REPO_ROOT / "tests"
    local = {p.stem for p in tests.rglob("*.py")} | {p.name for p in tests.rglob("*") if p.is_dir()}
    names = {n for f in [*_files(tests), *_scripts()] for n in _imports(f)}
    used = _distributions(names, local)
    runtime = {_dist(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    dev = {_dist(r) for r in extras["dev"]}
    assert used - runtime - dev - {_dist(r) for r in extras["train"]} == set(), "imported, not declared"
    assert dev - used - set(USED_WITHOUT_IMPORT) == set(), "in the dev extra, never imported"
