"""A plain `pip install .` must carry every module and data file: the package list in pyproject.toml is
explicit (the shipped playbooks and templates are mapped into the package), so a new subpackage that is not
listed would be missing from a real install while every test in a checkout still passed."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import REPO


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "continuity").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"


def test_shipped_data_is_mapped_into_the_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapped = {pkg: REPO / folder for pkg, folder in config["package-dir"].items()}
    assert mapped["continuity.shipped.playbooks"] == REPO / "playbooks"
    assert mapped["continuity.shipped.templates"] == REPO / "templates"
    assert (mapped["continuity.shipped.example"] / "playbooks.example.yaml").is_file()
    assert config["package-data"]["continuity.shipped.templates"] == ["**/*.j2"]
    # Playbooks, the campaign example and the JSON Schemas their yaml-language-server lines name: all installed.
    assert config["package-data"]["continuity.shipped.playbooks"] == ["*.yaml", "*.schema.json"]
    assert all(Path(p).suffix == ".yaml" or p.name.endswith(".schema.json") for p in (REPO / "playbooks").iterdir())
