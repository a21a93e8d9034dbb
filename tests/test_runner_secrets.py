"""Whatever text a sink hands back or raises, the ledger, the run's results and `--json` never carry one of
its secrets: the runner blanks every SecretStr and every `${...}`-resolved credential of the sink's settings.

The sink here is a test fixture (a sink that leaks on purpose, as a library's exception might); the code
under test is the real runner and engine on a real SQLite ledger.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from continuity.config.envrefs import EnvHeaders, EnvUrl, Secret
from continuity.redact import HIDDEN, secrets_in
from continuity.sinks import SINKS
from continuity.sinks.base import Action, Outcome, Sink, SinkSettings
from tests.conftest import Configure, MakeEngine, tick

TOKEN = "hooktoken-7f3a9c2e1b"
PASSWORD = "pw-Zq8xL2mN"
BEARER = "Bearer abc.def.ghi-92kd"
ENV = {
    "LEAKY_URL": f"http://127.0.0.1:9/hooks/{TOKEN}?access_token={TOKEN}",
    "LEAKY_PASSWORD": PASSWORD,
    "LEAKY_AUTH": BEARER,
}


class LeakySettings(SinkSettings):
    url: EnvUrl
    password: Secret
    headers: EnvHeaders = Field(default_factory=dict)
    mode: str = "raise"


class LeakySink(Sink):
    """Puts every secret it holds into its answer: in an exception, a retryable or a final outcome."""

    type_name = "leaky"
    Settings = LeakySettings
    actions = frozenset({"notify", "post", "notice", "banner"})

    async def apply(self, action: Action) -> Outcome:
        s = self.settings
        assert isinstance(s, LeakySettings)
        said = f"{s.url} as {s.password.get_secret_value()} with {s.headers.get('Authorization')}"
        if s.mode == "raise":
            raise RuntimeError(f"cannot reach {said}")
        if s.mode == "retry":
            return Outcome.retry(f"remote said: {said}")
        return Outcome.fail(f"refused: {said}")


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch, configure: Configure) -> Configure:
    monkeypatch.setitem(SINKS, "leaky", f"{__name__}:LeakySink")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def with_mode(mode: str) -> None:
        def edit(cfg: dict[str, Any]) -> None:
            cfg["sinks"]["leaky"] = {"type": "leaky", "url": "${LEAKY_URL}", "password": "${LEAKY_PASSWORD}",
                                     "headers": {"Authorization": "${LEAKY_AUTH}"}, "mode": mode}
            cfg["routes"]["staff"] = ["leaky", "outbox"]
            cfg["retry"] = {"attempts": 2, "first_delay": "1s", "max_delay": "1s", "inline_budget": "0s"}

        configure(edit)

    return with_mode  # type: ignore[return-value]


def _leaks(text: str) -> list[str]:
    return [s for s in (TOKEN, PASSWORD, BEARER, ENV["LEAKY_URL"]) if s in text]


def _ledger_text(workdir: Path) -> str:
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        rows = conn.execute("SELECT * FROM steps").fetchall() + conn.execute("SELECT * FROM events").fetchall()
    finally:
        conn.close()
    return json.dumps(rows, default=str)


@pytest.mark.parametrize("mode", ["raise", "retry", "fail"])
def test_no_secret_reaches_the_ledger_or_the_results(leaky: Any, engine: MakeEngine, workdir: Path,
                                                      mode: str) -> None:
    leaky(mode)
    eng = engine()
    eng.open("phone", reason="SIP trunk down", eta=None, by="tester")
    results = tick(eng)
    leaked = [r for r in results if r.row.sink == "leaky"]
    assert leaked, "the leaky sink ran"
    for result in leaked:
        assert result.state == "failed", result.state
        assert HIDDEN in result.detail, result.detail
        assert not _leaks(result.detail), result.detail
    # The other sink of the route did its job regardless.
    assert any(r.row.sink == "outbox" and r.state == "done" for r in results)
    text = _ledger_text(workdir)
    assert "cannot reach" in text or "remote said" in text or "refused" in text
    assert not _leaks(text)


def test_secrets_in_finds_every_secret_of_the_settings(leaky: Any, engine: MakeEngine) -> None:
    leaky("raise")
    found = secrets_in(engine().loaded.sinks["leaky"].settings)
    assert {PASSWORD, BEARER, ENV["LEAKY_URL"], TOKEN} <= found  # the token alone, as a library might log it
    assert "mode" not in found and "raise" not in found  # plain settings are not secrets
    assert all(len(s) >= 4 for s in found)
