"""Contracts every registered sink type keeps, walked from the SINKS registry itself.

Each test is parametrised by `continuity.sinks.SINKS`, so a newly registered type is covered at once, and a
type this file does not know how to exercise FAILS (add a driver to DRIVERS below). For every type:

1. its Settings model refuses an unknown key, and `continuity schema` (the real CLI) describes the type and
   every one of its settings;
2. it describes itself in one non-empty line (`description`);
3. it returns an Outcome, never raises, for success and for every failure class that applies to it
   (connection refused, a server that accepts and never answers, HTTP 4xx/5xx, SMTP and IMAP refusals, a
   directory that cannot be written), against real servers on 127.0.0.1; X is the one exception, mocked at
   the HTTP layer with `responses` as tests/sinks/test_x.py does, because no X server exists here;
4. every secret it takes is configured through a `${VAR}` reference (resolved by continuity.config.envrefs)
   to a recognisable value, and no outcome detail of any case shows it (the HTTP servers of the failure
   cases echo the request's path and Authorization header back, as real APIs do);
5. a reversible type switches off what it switched on: apply, then undo as the runner builds it (target_key,
   the apply row in `earlier`) through a fresh sink instance sharing the context, as after a restart.

The helpers at the top (settings from `${VAR}` references, secret fields, the schema lookup) are shared with
tests/test_registry_contracts_probes.py, which holds the same contracts for the PROBES registry.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import requests
import responses
from pydantic import BaseModel, ValidationError

from continuity.autoreply.state import active_parts
from continuity.config.envrefs import resolve_refs
from continuity.sinks import SINKS, sink_class
from continuity.sinks.base import Action, Earlier, Outcome, Sink, SinkContext
from tests.autoreply.respkit import add_mailbox, env_name, mailbox_sink
from tests.conftest import Configure, MakeEngine
from tests.probes import peerfixtures
from tests.probes.mailpeers import DovecotServer, MailUser, SmtpRelay
from tests.sinks import conftest as sinkpeers
from tests.sinks.conftest import NOW, SMTP_PASSWORD, SMTP_USER, HttpServer, MakeAction, SmtpRecorder, apply_once

# Shared fixtures, bound to module names (pytest finds a fixture by the name it has in the module).
context = sinkpeers.context
make_action = sinkpeers.make_action
sink_http = sinkpeers.http_server
smtp_server = sinkpeers.smtp_server
closed_port = sinkpeers.closed_port
silent_port = sinkpeers.silent_port
dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user
smtp_relay = peerfixtures.smtp_relay

TIMEOUT = timedelta(milliseconds=300)  # the timeout cases: a loopback peer that accepts and never answers

# ---------------------------------------------------------------------------------------------------------------
# Shared helpers (also used by tests/test_registry_contracts_probes.py)
# ---------------------------------------------------------------------------------------------------------------

# Field types that hold a credential, whole or in part (continuity.config.envrefs): Secret (a SecretStr),
# EnvSourced (an apprise URL), EnvHeaders (credential headers) and EnvUrl (a URL with ?access_token=).
_SECRET_MARKS = ("SecretStr", "_env_sourced", "_env_headers", "_env_url")


def secret_fields(model: type[BaseModel]) -> list[str]:
    """The settings of a model that take a credential (or a value that may embed one)."""
    return [name for name, f in model.model_fields.items()
            if any(mark in repr(f.annotation) + repr(f.metadata) for mark in _SECRET_MARKS)]


def resolve(raw: Any, environ: dict[str, str]) -> Any:
    """Every `${VAR}` in the raw settings replaced as the config loader does (continuity.config.envrefs)."""
    if isinstance(raw, str):
        return resolve_refs(raw, environ)
    if isinstance(raw, dict):
        return {k: resolve(v, environ) for k, v in raw.items()}
    if isinstance(raw, list):
        return [resolve(v, environ) for v in raw]
    return raw


def has_ref(raw: Any) -> bool:
    """Does a raw settings value carry a `${...}` reference (anywhere inside it)?"""
    if isinstance(raw, str):
        return "${" in raw
    if isinstance(raw, dict):
        return bool(raw) and all(has_ref(v) for v in raw.values())
    if isinstance(raw, list):
        return bool(raw) and all(has_ref(v) for v in raw)
    return False


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that show in text: as written, percent-encoded, or in another case."""
    low = text.lower()
    return sorted({s for s in secrets if s and (s.lower() in low or quote(s, safe="").lower() in low)})


def unknown_key_refused(model: type[BaseModel], valid: dict[str, Any]) -> str | None:
    """None when `valid` validates and `valid` plus an unknown key is refused naming that key; else why not."""
    try:
        model.model_validate(valid)
    except ValidationError as exc:
        return f"the driver's example settings do not validate (fix the driver): {exc}"
    try:
        model.model_validate({**valid, "colour_of_the_bikeshed": "blue"})
    except ValidationError as exc:
        if any(e["type"] == "extra_forbidden" and e["loc"] == ("colour_of_the_bikeshed",) for e in exc.errors()):
            return None
        return f"refused, but not as an unknown key: {exc}"
    return "an unknown key was accepted silently (a typo in the config would go unnoticed)"


def cli_schema_document(tmp: Path) -> dict[str, Any]:
    """`continuity schema` from the real CLI, parsed."""
    proc = subprocess.run([sys.executable, "-m", "continuity", "schema"], cwd=tmp, capture_output=True, text=True,
                          encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def cli_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return cli_schema_document(tmp_path_factory.mktemp("schema"))


def _deref(doc: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra} if extra else target
        seen += 1
    return node


def schema_objects(doc: dict[str, Any], node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every object schema `node` may be: through $ref, anyOf/oneOf/allOf, if/then/else, discriminators."""
    node = _deref(doc, node)
    if not isinstance(node, dict) or depth > 12:
        return
    yield node
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            yield from schema_objects(doc, sub, depth + 1)
    for key in ("then", "else"):
        if key in node:
            yield from schema_objects(doc, node[key], depth + 1)
    mapping = node.get("discriminator", {}).get("mapping", {}) if isinstance(node.get("discriminator"), dict) else {}
    for ref in mapping.values():
        yield from schema_objects(doc, {"$ref": ref}, depth + 1)


def _names_type(doc: dict[str, Any], node: dict[str, Any], type_name: str) -> bool:
    prop = _deref(doc, node.get("properties", {}).get("type"))
    if not isinstance(prop, dict):
        return False
    branches = [prop, *(_deref(doc, b) for b in prop.get("anyOf", []) + prop.get("oneOf", []))]
    return any(isinstance(b, dict) and (b.get("const") == type_name or type_name in b.get("enum", []))
               for b in branches)


def _properties(doc: dict[str, Any], node: dict[str, Any]) -> set[str]:
    names = set(node.get("properties", {}))
    for sub in node.get("allOf", []):
        sub = _deref(doc, sub)
        if isinstance(sub, dict):
            names |= _properties(doc, sub)
    return names


def schema_gaps(doc: dict[str, Any], places: list[Any], type_name: str, model: type[BaseModel]) -> str | None:
    """None when the schema, at one of `places` (where such entries go in the config), has a branch for
    `type: <type_name>` listing every setting of `model`; else what is missing."""
    wanted = {f.alias or name for name, f in model.model_fields.items()}
    for place in places:
        for node in schema_objects(doc, place):
            if _names_type(doc, node, type_name):
                missing = sorted(wanted - _properties(doc, node))
                if missing:
                    return f"the schema's branch for type {type_name!r} lacks the settings {missing}"
                return None
            # `if: {properties: {type: {const: X}}}, then: {...}` (the shape a type-keyed schema may take)
            cond = _deref(doc, node.get("if"))
            if isinstance(cond, dict) and _names_type(doc, cond, type_name) and "then" in node:
                then = _deref(doc, node["then"])
                missing = sorted(wanted - _properties(doc, then))
                return f"the schema's branch for type {type_name!r} lacks the settings {missing}" if missing else None
    shown = [json.dumps(_deref(doc, p))[:300] for p in places]
    return (f"`continuity schema` has no branch for type {type_name!r} (no subschema with type const/enum "
            f"{type_name!r}), so none of its settings {sorted(wanted)} are described there; at that place the "
            f"schema says only: {shown}")


# ---------------------------------------------------------------------------------------------------------------
# What the sink drivers share
# ---------------------------------------------------------------------------------------------------------------

# Recognisable secrets, reached only through `${VAR}` references (the loader's way).
ENV: dict[str, str] = {
    "WEBHOOK_TOKEN": "whtok-Zq9pL2xV7rT4nB8s",
    "WEBHOOK_SECRET": "whsig-Zq9mN3bC8kD1vQ6e",
    "WEBHOOK_AUTH": "whauth-Zq9Fw7Yt3Lp0xR2",
    "SMTP_PW": SMTP_PASSWORD,  # what tests/sinks/conftest.py's SMTP server accepts
    "SMTP_PW_WRONG": "Wr0ng-Zq9-smtp-pa55word",
    "CHAT_PASSWORD": "chatpw-Zq9Ks8Lm2Nb4Vc",
    "CHAT_HOOK": "T0HOOK-Zq9Bc3Dx7Yw1Mk5",
    "X_CONSUMER_KEY": "ck-Zq9Q2xpZW50S2V5aa",
    "X_CONSUMER_SECRET": "cs-Zq9c2VjcmV0LWNvbnN1bWVy",
    "X_ACCESS_TOKEN": "at-1234567890-Zq9VG9rZW4",
    "X_ACCESS_TOKEN_SECRET": "ats-Zq9dG9rZW4tc2VjcmV0",
    "POST_TOKEN": "mast-Zq9Tok3nValue4Mastodon",
    "POST_QUERY_TOKEN": "graph-Zq9AcCe55tokPageAcc",
    "IMAP_PW": "pw-Imap-s3cret",  # what peerfixtures.mail_user's mailbox accepts (set again from the fixture)
    "IMAP_PW_WRONG": "Wr0ng-Zq9-imap-pa55word",
    "AUTOREPLY_SMTP_PW": "arsmtp-Zq9Pq4Wr6Et8Yu",
}

OK = frozenset({"ok"})
RETRY = frozenset({"retryable"})
FAIL = frozenset({"error"})
NOT_OK = frozenset({"retryable", "error"})


@dataclass
class Ctx:
    """One case's surroundings: the test's fixtures on demand, a folder, and the `${VAR}` environment."""

    request: pytest.FixtureRequest
    tmp_path: Path
    environ: dict[str, str] = field(default_factory=lambda: dict(ENV))

    def peer(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


def echo_error(status: int) -> Any:
    """An HTTP answer that repeats the request line and its Authorization header, as many APIs' errors do."""

    def respond(rec: Any) -> tuple[int, dict[str, str], bytes]:
        said = f"{rec.method} {rec.path} refused (authorization: {rec.headers.get('Authorization')})"
        return status, {}, json.dumps({"error": said, "message": said}).encode()

    return respond


def http_case(server: HttpServer, case: str) -> None:
    """Set the loopback HTTP server up for one of the HTTP cases (success, timeout, http_4xx, http_5xx)."""
    if case == "timeout":
        server.delay = 5.0  # released at teardown
    elif case == "http_4xx":
        server.respond = echo_error(404)
    elif case == "http_5xx":
        server.respond = echo_error(503)


HTTP_CASES = {"success": OK, "refused": RETRY, "timeout": RETRY, "http_4xx": FAIL, "http_5xx": RETRY}


class HttpSinkDriver:
    """Mixin for the sinks that speak HTTP to the loopback server: every case but `refused` reached it."""

    def exercise(self, ctx: Ctx, case: str, sink: Sink, action: Action) -> Outcome:
        outcome = apply_once(sink, action)
        if case != "refused":
            assert len(ctx.peer("sink_http").requests) == 1, "the sink never reached the HTTP server"
        return outcome


class SinkDriver:
    """How to exercise one sink type. `example` is valid settings (secrets as `${VAR}`), the base of every case;
    `prepare` starts or points at the peer for a case and returns the settings to change."""

    kind: ClassVar[str]
    example: ClassVar[dict[str, Any]]
    cases: ClassVar[dict[str, frozenset[str]]]

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        return {}

    def exercise(self, ctx: Ctx, case: str, sink: Sink, action: Action) -> Outcome:
        return apply_once(sink, action)

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        """Apply, undo, and assert that nothing is left switched on (reversible types only)."""
        raise NotImplementedError


@dataclass
class Builder:
    """Builds sinks of one type from raw settings, all sharing one context (its send marks: the store)."""

    cls: type[Sink]
    ctx: Ctx
    context: SinkContext

    def settings(self, raw: dict[str, Any]) -> Any:
        return self.cls.Settings.model_validate(resolve(raw, self.ctx.environ))

    def sink(self, raw: dict[str, Any]) -> Sink:
        return self.cls(f"contract-{self.cls.type_name}", self.settings(raw), self.context)


def undo_of(make_action: MakeAction, apply: Action, applied: Outcome) -> Action:
    """The undo action as the runner builds it: its own key, the apply's key as target, the apply row earlier."""
    undo: Action = make_action(
        key=apply.key.replace("/open/", "/close/") + "/undo", operation="undo", kind=apply.kind,
        step_id=apply.step_id, target_key=apply.key, created_at=NOW + timedelta(hours=1),
        earlier=(Earlier(apply.key, apply.step_id, "open", "done", applied.detail),),
    )
    return undo


def apply_then_undo(build: Builder, raw: dict[str, Any], make_action: MakeAction, kind: str,
                    after_apply: Callable[[], None] | None = None) -> tuple[Action, Outcome, Action, Outcome]:
    """Apply through one sink, then undo through a fresh one of the same settings and context (a restarted
    runner: only the context's marks, the store, and the ledger rows in `earlier` carry over)."""
    apply: Action = make_action(key=f"s7/open/contract-step/1/{build.cls.type_name}", kind=kind,
                                step_id="contract-step")
    applied = apply_once(build.sink(raw), apply)
    assert applied.ok, f"apply failed, so undo cannot be checked: {applied}"
    if after_apply is not None:
        after_apply()
    undo = undo_of(make_action, apply, applied)
    sink = build.sink(raw)

    async def go() -> Outcome:
        try:
            return await sink.undo(undo)
        finally:
            await sink.aclose()

    undone = asyncio.run(go())
    assert undone.ok, f"undo failed: {undone}"
    return apply, applied, undo, undone


# ---------------------------------------------------------------------------------------------------------------
# One driver per sink type
# ---------------------------------------------------------------------------------------------------------------


class FilesDriver(SinkDriver):
    """The local-file sinks: nothing on the network; what can fail is the directory."""

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "unwritable":
            (ctx.tmp_path / "blocked").write_text("a file where the directory should be")
            return {"directory": "blocked"}
        return {}


class OutboxDriver(FilesDriver):
    kind = "banner"  # a JSON document for apply and for undo alike
    example: ClassVar[dict[str, Any]] = {"directory": "outbox"}
    cases: ClassVar[dict[str, frozenset[str]]] = {"success": OK, "unwritable": NOT_OK}

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        apply, _, undo, _ = apply_then_undo(build, self.example, make_action, self.kind)
        docs = [json.loads(p.read_text()) for p in sorted((ctx.tmp_path / "outbox").glob("*.json"))]
        mine = sorted((d for d in docs if (d["situation_id"], d["step_id"]) == (7, apply.step_id)),
                      key=lambda d: d["at"])
        # The outbox is a record of what went out: switching off is a later "undo" document for the same step.
        assert [(d["operation"], d["key"]) for d in mine] == [("apply", apply.key), ("undo", undo.key)], mine


class FileBannerDriver(FilesDriver):
    kind = "banner"
    example: ClassVar[dict[str, Any]] = {"directory": "site/banner"}
    cases: ClassVar[dict[str, frozenset[str]]] = {"success": OK, "unwritable": FAIL}

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        folder = ctx.tmp_path / "site/banner"
        files = [folder / "continuity-banner.json", folder / "continuity-banner.html"]

        def shown() -> None:
            assert all(p.exists() for p in files), "apply showed no banner"

        apply_then_undo(build, self.example, make_action, self.kind, shown)
        assert [p.name for p in files if p.exists()] == [], "the banner is still shown after undo"


class VoiceTextDriver(FilesDriver):
    kind = "announce"
    example: ClassVar[dict[str, Any]] = {"directory": "pbx"}
    cases: ClassVar[dict[str, frozenset[str]]] = {"success": OK, "unwritable": FAIL}

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        folder = ctx.tmp_path / "pbx"

        def announced() -> None:
            assert (folder / "continuity-announcement.txt").exists(), "apply announced nothing"

        apply_then_undo(build, self.example, make_action, self.kind, announced)
        left = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))
        assert left == [], f"announcement files left after undo: {left}"

    def exercise(self, ctx: Ctx, case: str, sink: Sink, action: Action) -> Outcome:
        outcome = apply_once(sink, action)
        if outcome.ok:
            assert (ctx.tmp_path / "pbx" / "continuity-announcement.txt").exists(), "success, but no file"
        return outcome


class WebhookDriver(HttpSinkDriver, SinkDriver):
    kind = "notify"
    example: ClassVar[dict[str, Any]] = {
        "url": "http://127.0.0.1:9/hook/${WEBHOOK_TOKEN}", "secret": "${WEBHOOK_SECRET}",
        "headers": {"Authorization": "Bearer ${WEBHOOK_AUTH}"}, "timeout": 5,
    }
    cases = HTTP_CASES

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        port = ctx.peer("closed_port") if case == "refused" else ctx.peer("sink_http").port
        if case != "refused":
            http_case(ctx.peer("sink_http"), case)
        extra: dict[str, Any] = {"timeout": TIMEOUT.total_seconds()} if case == "timeout" else {}
        return {"url": f"http://127.0.0.1:{port}/hook/${{WEBHOOK_TOKEN}}", **extra}

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        server = ctx.peer("sink_http")
        raw = {**self.example, **self.prepare(ctx, "success")}
        apply, _, _, _ = apply_then_undo(build, raw, make_action, self.kind)
        docs = [json.loads(r.body) for r in server.requests]
        assert [d["operation"] for d in docs] == ["apply", "undo"], docs
        assert docs[1]["target_key"] == apply.key and docs[1]["step_id"] == apply.step_id, docs[1]


class EmailDriver(SinkDriver):
    kind = "notify"
    example: ClassVar[dict[str, Any]] = {
        "host": "127.0.0.1", "port": 9, "security": "none", "username": SMTP_USER, "password": "${SMTP_PW}",
        "sender": "Continuity <continuity@example.org>", "to": ["lead@example.org"], "timeout": 5,
    }
    cases: ClassVar[dict[str, frozenset[str]]] = {
        "success": OK, "refused": RETRY, "timeout": RETRY,
        "smtp_auth_535": FAIL, "smtp_rcpt_451": RETRY, "smtp_rcpt_550": FAIL, "smtp_data_554": FAIL,
    }

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"port": ctx.peer("closed_port")}
        if case == "timeout":
            return {"port": ctx.peer("silent_port"), "timeout": TIMEOUT.total_seconds()}
        server: SmtpRecorder = ctx.peer("smtp_server")
        if case == "smtp_auth_535":
            return {"port": server.port, "password": "${SMTP_PW_WRONG}"}
        if case == "smtp_rcpt_451":
            server.rcpt_replies["lead@example.org"] = "451 4.7.1 <lead@example.org>: greylisted, try again later"
        if case == "smtp_rcpt_550":
            server.rcpt_replies["lead@example.org"] = "550 5.1.1 <lead@example.org>: recipient unknown"
        if case == "smtp_data_554":
            server.data_reply = "554 5.7.1 message refused as spam"
        return {"port": server.port}

    def exercise(self, ctx: Ctx, case: str, sink: Sink, action: Action) -> Outcome:
        outcome = apply_once(sink, action)
        if outcome.ok:
            assert len(ctx.peer("smtp_server").messages) == 1, "success, but the server got no message"
        return outcome


class ChatDriver(HttpSinkDriver, SinkDriver):
    kind = "notify"
    example: ClassVar[dict[str, Any]] = {
        "urls": ["json://ops:${CHAT_PASSWORD}@127.0.0.1:9/chat/${CHAT_HOOK}?cto=5&rto=5"],
    }
    # apprise tells delivered from not delivered only, so every failure is worth another try.
    cases: ClassVar[dict[str, frozenset[str]]] = {**HTTP_CASES, "http_4xx": RETRY}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        port = ctx.peer("closed_port") if case == "refused" else ctx.peer("sink_http").port
        if case != "refused":
            http_case(ctx.peer("sink_http"), case)
        wait = TIMEOUT.total_seconds() if case == "timeout" else 5
        return {"urls": [f"json://ops:${{CHAT_PASSWORD}}@127.0.0.1:{port}/chat/${{CHAT_HOOK}}?cto={wait}&rto={wait}"]}


TWEETS = "https://api.twitter.com/2/tweets"


def _tweet(tweet_id: str) -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": "…", "edit_history_tweet_ids": [tweet_id]}}


class XDriver(SinkDriver):
    """X's API mocked at the HTTP layer (responses), the one exception: no X server exists here."""

    kind = "post"
    example: ClassVar[dict[str, Any]] = {
        "consumer_key": "${X_CONSUMER_KEY}", "consumer_secret": "${X_CONSUMER_SECRET}",
        "access_token": "${X_ACCESS_TOKEN}", "access_token_secret": "${X_ACCESS_TOKEN_SECRET}", "timeout": 5,
    }
    cases: ClassVar[dict[str, frozenset[str]]] = {
        "success": OK, "refused": RETRY, "timeout": RETRY, "http_4xx": FAIL, "http_401": FAIL, "http_5xx": RETRY,
    }
    answers: ClassVar[dict[str, dict[str, Any]]] = {
        "success": {"status": 201, "json": _tweet("1001")},
        "refused": {"body": requests.ConnectionError("[Errno 111] Connection refused")},
        "timeout": {"body": requests.ReadTimeout("read timed out (read timeout=0.3)")},
        # Error texts that repeat what was sent, as OAuth errors do.
        "http_4xx": {"status": 400, "json": {"title": "Invalid Request", "errors": [
            {"message": f"token {ENV['X_ACCESS_TOKEN']} may not reply here"}]}},
        "http_401": {"status": 401, "json": {"title": "Unauthorized", "status": 401,
                                             "detail": f"Unknown consumer key {ENV['X_CONSUMER_KEY']}"}},
        "http_5xx": {"status": 503, "json": {"title": "Service Unavailable", "detail": "Service Unavailable"}},
    }

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        return {"timeout": TIMEOUT.total_seconds()} if case == "timeout" else {}

    def exercise(self, ctx: Ctx, case: str, sink: Sink, action: Action) -> Outcome:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add(responses.POST, TWEETS, **self.answers[case])
            outcome = apply_once(sink, action)
            assert len(mock.calls) == 1, "the sink did not talk to X"
        return outcome

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add(responses.POST, TWEETS, json=_tweet("1001"), status=201)
            mock.add(responses.DELETE, f"{TWEETS}/1001", json={"data": {"deleted": True}}, status=200)
            apply_then_undo(build, {**self.example, "delete_on_undo": True}, make_action, self.kind)
            calls = [(c.request.method, c.request.url) for c in mock.calls]
        assert calls == [("POST", TWEETS), ("DELETE", f"{TWEETS}/1001")], calls


class HttpPostDriver(HttpSinkDriver, SinkDriver):
    kind = "post"
    example: ClassVar[dict[str, Any]] = {
        "url": "http://127.0.0.1:9/api/v1/statuses?access_token=${POST_QUERY_TOKEN}",
        "headers": {"Authorization": "Bearer ${POST_TOKEN}"}, "body": '{"status": {{ text }}}', "timeout": 5,
    }
    cases = HTTP_CASES

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        port = ctx.peer("closed_port") if case == "refused" else ctx.peer("sink_http").port
        if case != "refused":
            http_case(ctx.peer("sink_http"), case)
        extra: dict[str, Any] = {"timeout": TIMEOUT.total_seconds()} if case == "timeout" else {}
        return {"url": f"http://127.0.0.1:{port}/api/v1/statuses?access_token=${{POST_QUERY_TOKEN}}", **extra}


class AutoreplyDriver(SinkDriver):
    """apply proves the mailbox logs in (Dovecot); the switch itself is the ledger."""

    kind = "autoreply"
    example: ClassVar[dict[str, Any]] = {
        "address": "support@example.test", "imap_host": "127.0.0.1", "imap_port": 9, "imap_security": "none",
        "imap_password": "${IMAP_PW}", "smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_security": "none",
        "smtp_username": "ops", "smtp_password": "${AUTOREPLY_SMTP_PW}", "timeout": "5s",
    }
    cases: ClassVar[dict[str, frozenset[str]]] = {
        "success": OK, "refused": RETRY, "timeout": RETRY, "imap_login_refused": FAIL, "imap_no_mailbox": FAIL,
    }

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"imap_port": ctx.peer("closed_port")}
        if case == "timeout":
            return {"imap_port": ctx.peer("silent_port"), "timeout": TIMEOUT}
        server: DovecotServer = ctx.peer("dovecot")
        user: MailUser = ctx.peer("mail_user")
        ctx.environ["IMAP_PW"] = user.password
        extra: dict[str, Any] = {}
        if case == "imap_login_refused":
            extra = {"imap_password": "${IMAP_PW_WRONG}"}
        if case == "imap_no_mailbox":
            extra = {"mailbox": "Nowhere"}
        return {"address": user.address, "imap_host": server.host, "imap_port": server.imap_port, **extra}

    def undo_contract(self, ctx: Ctx, build: Builder, make_action: MakeAction) -> None:
        # The responder is on while the ledger has the step done for an open situation: run the real engine.
        server: DovecotServer = ctx.peer("dovecot")
        user: MailUser = ctx.peer("mail_user")
        relay: SmtpRelay = ctx.peer("smtp_relay")
        configure: Configure = ctx.peer("configure")
        engine: MakeEngine = ctx.peer("engine")
        configure(lambda cfg: add_mailbox(cfg, "support", mailbox_sink(server, user, relay)))
        eng = engine(start=datetime.now(UTC), environ={env_name("support"): user.password})
        eng.open("phone", reason="contract test", by="tester")
        opened = eng.run_due()
        assert any((r.row.sink, r.state) == ("support", "done") for r in opened), [(r.row.sink, r.state, r.detail)
                                                                                   for r in opened]
        assert active_parts(eng.store, "support"), "apply did not switch the responder on"
        eng.close("phone", by="tester")
        closed = eng.run_due()
        undone = [r for r in closed if r.row.sink == "support" and r.row.phase == "undo"]
        assert undone and all(r.state == "done" for r in undone), [(r.row.step_id, r.state, r.detail) for r in closed]
        assert active_parts(eng.store, "support") == [], "the responder is still on after undo"


DRIVERS: dict[str, SinkDriver] = {
    "outbox": OutboxDriver(),
    "file_banner": FileBannerDriver(),
    "webhook": WebhookDriver(),
    "email": EmailDriver(),
    "chat": ChatDriver(),
    "voice_text": VoiceTextDriver(),
    "x": XDriver(),
    "http_post": HttpPostDriver(),
    "autoreply": AutoreplyDriver(),
}


def driver_for(type_name: str) -> SinkDriver:
    driver = DRIVERS.get(type_name)
    if driver is None:
        pytest.fail(f"sink type {type_name!r} is registered in continuity/sinks/__init__.py but "
                    f"tests/test_registry_contracts.py has no driver for it: add one to DRIVERS (its settings, its "
                    "failure classes, how to run it against a loopback peer, and its undo check if reversible)")
    return driver


def case_params() -> list[Any]:
    params = []
    for type_name in sorted(SINKS):
        driver = DRIVERS.get(type_name)
        if driver is None:
            params.append(pytest.param(type_name, "no-driver", id=f"{type_name}-no-driver"))
            continue
        params += [pytest.param(type_name, case, id=f"{type_name}-{case}") for case in driver.cases]
    return params


# ---------------------------------------------------------------------------------------------------------------
# The contracts
# ---------------------------------------------------------------------------------------------------------------


def test_every_driver_is_for_a_registered_type() -> None:
    assert sorted(set(DRIVERS) - set(SINKS)) == [], "drivers for sink types that are no longer registered"


@pytest.mark.parametrize("type_name", sorted(SINKS))
def test_class_matches_its_registry_entry(type_name: str) -> None:
    cls = sink_class(type_name)
    assert issubclass(cls, Sink)
    assert cls.type_name == type_name
    assert cls.actions, "a sink type must take at least one action kind"
    assert issubclass(cls.Settings, BaseModel)


@pytest.mark.parametrize("type_name", sorted(SINKS))
def test_description_is_one_non_empty_line(type_name: str) -> None:
    text = sink_class(type_name).description
    assert text.strip(), f"sink type {type_name!r} has no description"
    assert "\n" not in text and "\r" not in text, f"the description of {type_name!r} is not one line: {text!r}"
    assert text == text.strip(), f"the description of {type_name!r} has stray whitespace: {text!r}"


@pytest.mark.parametrize("type_name", sorted(SINKS))
def test_settings_refuse_an_unknown_key(type_name: str) -> None:
    cls = sink_class(type_name)
    problem = unknown_key_refused(cls.Settings, resolve(driver_for(type_name).example, ENV))
    assert problem is None, f"sink type {type_name!r}: {problem}"


@pytest.mark.parametrize("type_name", sorted(SINKS))
def test_type_and_every_setting_are_in_the_cli_schema(type_name: str, cli_schema: dict[str, Any]) -> None:
    # Where sinks go in the config: `sinks: {<name>: {type: …, …settings}}`.
    places = list(cli_schema["properties"]["sinks"].get("patternProperties", {}).values())
    if isinstance(cli_schema["properties"]["sinks"].get("additionalProperties"), dict):
        places.append(cli_schema["properties"]["sinks"]["additionalProperties"])
    assert places, "`continuity schema` has no place for sinks"
    problem = schema_gaps(cli_schema, places, type_name, sink_class(type_name).Settings)
    assert problem is None, problem


@pytest.mark.parametrize("type_name", sorted(SINKS))
def test_secret_settings_are_exercised_through_env_refs(type_name: str) -> None:
    cls = sink_class(type_name)
    example = driver_for(type_name).example
    unset = [name for name in secret_fields(cls.Settings) if not has_ref(example.get(name))]
    assert unset == [], (f"sink type {type_name!r} takes secrets in {unset}; its driver must set each through a "
                         "${VAR} reference so the outcome texts can be checked for it")


@pytest.mark.parametrize(("type_name", "case"), case_params())
def test_outcome_for_each_failure_class_shows_no_secret(type_name: str, case: str, request: pytest.FixtureRequest,
                                                        tmp_path: Path, context: SinkContext,
                                                        make_action: MakeAction) -> None:
    driver = driver_for(type_name)
    cls = sink_class(type_name)
    ctx = Ctx(request, tmp_path)
    raw = {**driver.example, **driver.prepare(ctx, case)}
    sink = Builder(cls, ctx, context).sink(raw)
    action: Action = make_action(kind=driver.kind, key=f"s7/open/contract-step/1/{type_name}", step_id="contract-step")
    try:
        outcome = driver.exercise(ctx, case, sink, action)
    except Exception as exc:  # the contract: a sink reports, it never raises for a remote failure
        pytest.fail(f"sink type {type_name!r}, case {case}: raised {type(exc).__name__}: {exc} instead of "
                    "returning an Outcome")
    assert isinstance(outcome, Outcome), f"{type_name} {case}: returned {outcome!r}, not an Outcome"
    problems = []
    if outcome.status not in driver.cases[case]:
        problems.append(f"status {outcome.status!r}, expected one of {sorted(driver.cases[case])}")
    if case != "success" and not outcome.detail.strip():
        problems.append("a failure without a detail saying why")
    shown = leaked(outcome.detail, ctx.environ.values())
    if shown:
        problems.append(f"the detail shows the secret(s) {shown}")
    assert not problems, f"sink type {type_name!r}, case {case}: {'; '.join(problems)} — outcome {outcome!r}"


@pytest.mark.parametrize("type_name", sorted(t for t in SINKS if sink_class(t).reversible))
def test_undo_switches_off_what_apply_switched_on(type_name: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                  context: SinkContext, make_action: MakeAction) -> None:
    driver = driver_for(type_name)
    if type(driver).undo_contract is SinkDriver.undo_contract:
        pytest.fail(f"sink type {type_name!r} is reversible but its driver has no undo_contract: add one that "
                    "applies, undoes and checks that nothing is left switched on")
    ctx = Ctx(request, tmp_path)
    driver.undo_contract(ctx, Builder(sink_class(type_name), ctx, context), make_action)
