"""Credentials that sit inside ordinary config values (an apprise URL, an Authorization header, a URL with
?access_token=) must be written as ${ENV} references: a literal is refused by `continuity validate` with the
file, line and field, and a reference works and never shows in a repr, the CLI output or an error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from continuity.config.loader import load_config
from continuity.sinks.base import Outcome, Sink, SinkContext
from tests.conftest import CONFIG_NAME, Configure, RunCli
from tests.sinks.conftest import HttpServer, MakeAction

CHAT_TOKEN = "xoxb-Lit3ral-Ch4t-T0ken"
HOOK_TOKEN = "tok-Lit3ral-H00k-5ecret"


def _line_of(path: Path, text: str) -> int:
    """1-based line of the first line holding text (the config is rewritten, so lines are looked up)."""
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def _add_sink(name: str, sink: dict[str, Any]) -> Any:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"][name] = sink

    return edit


def _add_probe(probe: dict[str, Any]) -> Any:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["internet"]["health"] = {"probes": [probe]}

    return edit


CASES = {
    "literal slack url": (
        _add_sink("team_chat", {"type": "chat", "urls": [f"slack://{CHAT_TOKEN}/B0000/C0000"]}),
        CHAT_TOKEN, "sinks.team_chat.urls[0]", "embeds its token: write it as ${ENV_VAR}",
    ),
    "literal authorization header": (
        _add_sink("hook", {"type": "webhook", "url": "https://shop.example.test/hook",
                           "headers": {"X-Team": "support", "Authorization": f"Bearer {HOOK_TOKEN}"}}),
        HOOK_TOKEN, "sinks.hook.headers.Authorization", "header Authorization carries a credential",
    ),
    "access_token in the url": (
        _add_sink("facebook_page", {"type": "http_post", "body": '{"message": {{ text }}}',
                                    "url": f"https://graph.example.test/v21.0/1/feed?access_token={HOOK_TOKEN}"}),
        HOOK_TOKEN, "sinks.facebook_page.url", "credential in its query (access_token=…)",
    ),
    "user and password in a probe url": (
        _add_probe({"type": "http", "url": f"https://monitor:{HOOK_TOKEN}@www.example.test/health"}),
        HOOK_TOKEN, "channels.internet.health.probes[0].url", "user name and password",
    ),
    "api key header of a probe": (
        _add_probe({"type": "http", "url": "https://www.example.test/", "headers": {"X-Api-Key": HOOK_TOKEN}}),
        HOOK_TOKEN, "channels.internet.health.probes[0].headers.X-Api-Key", "header X-Api-Key carries a credential",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_literal_credential_is_refused_with_file_line_and_field(configure: Configure, cli: RunCli,
                                                                   case: str) -> None:
    edit, secret, field, words = CASES[case]
    path = configure(edit)
    line = _line_of(path, secret)
    result = cli("validate")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{CONFIG_NAME}:{line} {field}: " in result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr


def _with_references(port: int) -> Any:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["team_chat"] = {"type": "chat", "urls": [f"json://bot:${{CHAT_TOKEN}}@127.0.0.1:{port}/chat"]}
        cfg["sinks"]["hook"] = {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook?access_token=${{HOOK_TOKEN}}",
                                "headers": {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Team": "support"}}
        cfg["channels"]["internet"]["health"] = {"probes": [
            {"type": "http", "url": "${PROBE_URL}", "headers": {"Authorization": "Bearer ${HOOK_TOKEN}"}}]}

    return edit


def test_references_are_accepted_masked_and_sent(configure: Configure, cli: RunCli, http_server: HttpServer,
                                                 make_action: MakeAction, context: SinkContext) -> None:
    env = {"CHAT_TOKEN": CHAT_TOKEN, "HOOK_TOKEN": HOOK_TOKEN,
           "PROBE_URL": f"https://monitor:{HOOK_TOKEN}@www.example.test/health"}
    path = configure(_with_references(http_server.port))
    result = cli("validate", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert HOOK_TOKEN not in result.stdout + result.stderr and CHAT_TOKEN not in result.stdout + result.stderr

    loaded = load_config(path, environ=env)
    chat, hook = loaded.sinks["team_chat"], loaded.sinks["hook"]
    [probe] = loaded.probes["internet"]
    for settings in (chat.settings, hook.settings, probe.settings):
        assert HOOK_TOKEN not in repr(settings) + str(settings)
        assert CHAT_TOKEN not in repr(settings) + str(settings)
    assert hook.settings.headers["X-Team"] == "support" and "'support'" in repr(hook.settings)  # not a secret

    action = make_action(kind="notify")

    async def send(sink: Sink) -> Outcome:
        try:
            return await sink.apply(action)
        finally:
            await sink.aclose()

    outcomes: list[Outcome] = [asyncio.run(send(s.cls(s.name, s.settings, context))) for s in (hook, chat)]
    assert all(o.ok for o in outcomes), outcomes
    hook_request, chat_request = http_server.requests
    assert hook_request.path == f"/hook?access_token={HOOK_TOKEN}"
    assert hook_request.headers["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert chat_request.path == "/chat"
    assert chat_request.headers["Authorization"].startswith("Basic ")  # bot:CHAT_TOKEN, as apprise sends it
    assert all(HOOK_TOKEN not in o.detail and CHAT_TOKEN not in o.detail for o in outcomes)


def test_an_escaped_reference_is_still_a_literal(configure: Configure, cli: RunCli) -> None:
    configure(_add_sink("team_chat", {"type": "chat", "urls": ["slack://$${NOT_A_REF}/B0000/C0000"]}))
    result = cli("validate")
    assert result.returncode == 2 and "embeds its token" in result.stderr
