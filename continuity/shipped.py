"""Where the shipped playbooks, template packs and example config are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """`playbooks` or `templates`: inside the installed package, else the repository checkout's folder."""
    installed = _PKG / "shipped" / name
    if installed.is_dir():
        return installed
    return _PKG.parent / name


def example_config() -> Path:
    installed = _PKG / "shipped" / "example" / "playbooks.example.yaml"
    return installed if installed.is_file() else _PKG.parent / "playbooks.example.yaml"
