"""Fixtures of the console tests: a real daemon on the shipped example config with three users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.console.kit import ConsoleSite


@pytest.fixture
def console_site(tmp_path: Path) -> Iterator[Callable[..., ConsoleSite]]:
    """`console_site(console="{session_ttl: 2s}")` writes the config, adds olga (oncall), mark (marketing)
    and vera (viewer) with the CLI, and starts `continuity daemon`; it is stopped after the test."""
    started: list[ConsoleSite] = []

    def make(console: str = "") -> ConsoleSite:
        site = ConsoleSite(tmp_path, console)
        site.daemon.start()
        started.append(site)
        return site

    yield make
    for site in started:
        if site.daemon.proc is not None:
            site.daemon.stop()
