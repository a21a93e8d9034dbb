"""The house's structure holds: every module has its layer in pyproject.toml's import contracts and they pass,
no private name crosses a module boundary, and every SQL statement lives in continuity/store/."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "continuity"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def _layered_modules() -> set[str]:
    [layers] = [c for c in _contracts() if c["type"] == "layers"]
    names: set[str] = set()
    for layer in layers["layers"]:  # type: ignore[union-attr]
        names.update(part.strip() for part in re.split(r"[|:]", str(layer)))
    return names


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def test_every_module_has_a_layer() -> None:
    layered = _layered_modules()
    unplaced = [name for name, _ in _modules()
                if name not in ("continuity", "continuity.config")
                and not any(name == m or name.startswith(m + ".") for m in layered)]
    assert not unplaced, f"add these to a layer in pyproject.toml [tool.importlinter]: {unplaced}"


def test_the_layer_contracts_pass() -> None:
    tool = Path(sys.executable).parent / "lint-imports"
    command = [str(tool)] if tool.exists() else [shutil.which("lint-imports") or "lint-imports"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    kept = re.findall(r"^(.*) KEPT$", done.stdout, re.M)
    assert len(kept) == len(_contracts()) >= 2, done.stdout


def test_no_private_name_crosses_a_module() -> None:
    """`from x import _name` or `module._name(...)` from another module: a name that is not part of x's face."""
    own = {name for name, _ in _modules()}
    found = []
    for name, path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("continuity"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") and node.module != name:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
                    if f"{node.module}.{alias.name}" in own:
                        imported_modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("continuity"):
                        imported_modules[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in imported_modules and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {imported_modules[node.value.id]}."
                             f"{node.attr}")
    assert not found, found


def test_sql_lives_only_in_the_store() -> None:
    found = []
    for name, path in _modules():
        if name.startswith("continuity.store"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"\.execute(many)?\(|\.conn\b|\bsqlite3\b", line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
