"""Text typed by people or found in files reaches the terminal as written: square brackets are never read
as console markup (no MarkupError traceback, no characters silently eaten from an error message)."""

from __future__ import annotations

from typing import Any

from tests.conftest import NOW, Configure, RunCli


def test_config_key_that_looks_like_markup_is_a_normal_input_error(cli: RunCli, configure: Configure) -> None:
    def add_key(cfg: dict[str, Any]) -> None:
        cfg["[/x]"] = 1

    configure(add_key)
    done = cli("validate")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    assert "[/x]" in done.stderr
    assert "continuity.yaml:" in done.stderr


def test_pattern_error_prints_the_real_pattern(cli: RunCli, configure: Configure) -> None:
    def bad_route(cfg: dict[str, Any]) -> None:
        cfg["routes"]["staff"] = ["[bold]x[/bold]"]

    configure(bad_route)
    done = cli("validate")
    assert done.returncode == 2, done.stderr
    assert "'^[a-z0-9][a-z0-9_-]*$'" in done.stderr, done.stderr
    assert "routes.staff[0]" in done.stderr


def test_reason_with_brackets_is_shown_as_typed(cli: RunCli) -> None:
    reason = "trunk [/x] down, see [bold]ticket[/bold] [red]"
    opened = cli("outage", "phone", "--reason", reason, now=NOW)
    assert opened.returncode == 0, opened.stderr
    assert reason in opened.stdout
    status = cli("status", now=NOW)
    assert status.returncode == 0, status.stderr
    assert reason in status.stdout
    history = cli("history", now=NOW)
    assert history.returncode == 0, history.stderr
    assert "[/x]" in history.stdout
