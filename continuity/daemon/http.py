"""The daemon's small HTTP endpoint: /healthz and /metrics for monitoring, and a few actions that change
state (declare, restore, tick), each behind a bearer token read from the environment."""

from __future__ import annotations

import hmac
import json
import os
import re
from typing import TYPE_CHECKING, Any, Protocol

from continuity import limits
from continuity.errors import ContinuityError
from continuity.public.web import Served

if TYPE_CHECKING:
    from aiohttp import web

    from continuity.daemon.metrics import Metrics
    from continuity.engine import Engine
    from continuity.quorum import Observation
    from continuity.runner import StepResult


class Controlled(Served, Protocol):
    """What the HTTP endpoint needs of the daemon (continuity.daemon.service.Daemon) beyond the public pages:
    where it listens, its engine and metrics, and the two calls behind /healthz and the actions."""

    bind: str
    engine: Engine
    metrics: Metrics

    def healthz(self, full: bool = False) -> tuple[bool, dict[str, Any]]: ...

    async def run_steps(self) -> list[StepResult]: ...

    async def observe(self, vantage: str, observations: list[Observation]) -> dict[str, Any]: ...

    def ping(self, vantage: str) -> None: ...


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _json(data: Any, status: int = 200) -> web.Response:
    from aiohttp import web

    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), status=status,
                        content_type="application/json")


def _authorised(daemon: Controlled, request: web.Request) -> web.Response | None:
    """None when the request carries the right token; otherwise the refusal to send."""
    env = daemon.loaded.config.daemon.token_env
    token = os.environ.get(env)
    if not token:
        return _json({"ok": False, "error": f"actions over HTTP are disabled: set {env}"}, 403)
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
        return _json({"ok": False, "error": "missing or wrong bearer token"}, 401)
    return None


def _not_text(body: dict[str, Any], *fields: str) -> web.Response | None:
    """A 400 naming the first optional field that is present but not text."""
    for name in fields:
        if body.get(name) is not None and not isinstance(body[name], str):
            return _json({"ok": False, "error": f"{name} must be text"}, 400)
    return None


async def serve(daemon: Controlled) -> web.AppRunner:
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        ok, body = daemon.healthz(full=_authorised(daemon, request) is None)  # reasons only with the token
        return _json(body, 200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=daemon.metrics.render(), content_type="text/plain", charset="utf-8")

    async def outage(request: web.Request) -> web.Response:
        refused = _authorised(daemon, request)
        if refused:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _json({"ok": False, "error": "body must be JSON: {\"reason\": ..., \"eta\": \"2h\"}"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("reason"), str):
            return _json({"ok": False, "error": "reason (text) is required"}, 400)
        wrong = _not_text(body, "eta", "by", "cause")
        if wrong:
            return wrong
        from continuity.durations import parse_eta
        from continuity.variables import cause_catalog

        # What customers read as the cause: a prepared key (the staff's reason never reaches them from here).
        cause = body.get("cause")
        known = cause_catalog(daemon.loaded)
        if cause is not None and cause not in known:
            return _json({"ok": False, "error": f"cause {cause!r} is unknown; known: {', '.join(known)}"}, 400)

        try:
            eta = parse_eta(body.get("eta"), daemon.clock.now(), daemon.loaded.config.organisation.timezone,
                            option="eta")
            result = daemon.engine.open(request.match_info["channel"], reason=body["reason"], eta=eta,
                                        by=str(body.get("by") or "http"), source="http",
                                        data={"cause": cause} if cause else None)
        except ContinuityError as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        ran = await daemon.run_steps()
        return _json({"ok": True, "situation": result.situation.id, "created": result.created,
                      "ran": [r.as_dict() for r in ran]})

    async def restore(request: web.Request) -> web.Response:
        refused = _authorised(daemon, request)
        if refused:
            return refused
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return _json({"ok": False, "error": "body must be JSON: {\"note\": ...} or empty"}, 400)
        if not isinstance(body, dict):
            return _json({"ok": False, "error": "body must be a JSON object: {\"note\": ...}"}, 400)
        wrong = _not_text(body, "note", "by")
        if wrong:
            return wrong
        try:
            result = daemon.engine.close(request.match_info["channel"], by=str(body.get("by") or "http"),
                                         note=body.get("note"))
        except ContinuityError as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        ran = await daemon.run_steps()
        return _json({"ok": True, "closed": result.closed, "ran": [r.as_dict() for r in ran]})

    async def tick(request: web.Request) -> web.Response:
        refused = _authorised(daemon, request)
        if refused:
            return refused
        ran = await daemon.run_steps()
        return _json({"ok": True, "ran": [r.as_dict() for r in ran]})

    async def probes(request: web.Request) -> web.Response:
        """What an agent at ?vantage=NAME runs: the config's probes for it, `${VAR}` references unresolved."""
        refused = _authorised(daemon, request)
        if refused:
            return refused
        from continuity.quorum import assignments

        vantage = request.query.get("vantage", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", vantage):
            return _json({"ok": False, "error": "vantage: give ?vantage=NAME (lower-case letters, digits, - _)"}, 400)
        return _json({"ok": True, **assignments(daemon.loaded, vantage)})

    versions: dict[str, str] = {}

    async def observations(request: web.Request) -> web.Response:
        refused = _authorised(daemon, request)
        if refused:
            return refused
        from continuity.quorum import assignments, parse_observations

        try:
            parsed = parse_observations(await request.json(), daemon.loaded.config.channels)
        except ValueError as exc:  # json.JSONDecodeError is one too
            return _json({"ok": False, "error": str(exc) if not isinstance(exc, json.JSONDecodeError)
                          else "body must be JSON"}, 400)
        vantage = (await request.json())["vantage"]
        result = await daemon.observe(vantage, parsed)
        # The agent compares the version and refetches its probes when the assignment changed (the config is
        # loaded once per daemon, so each vantage's version is worked out once).
        if vantage not in versions:
            versions[vantage] = assignments(daemon.loaded, vantage)["version"]
        return _json({"ok": True, **result, "version": versions[vantage]})

    async def heartbeat(request: web.Request) -> web.Response:
        refused = _authorised(daemon, request)
        if refused:
            return refused
        name = request.match_info["name"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            return _json({"ok": False, "error": "the vantage name must be lower-case letters, digits, - and _"}, 400)
        daemon.ping(name)
        return _json({"ok": True, "vantage": name})

    app = web.Application(client_max_size=limits.API_BODY)  # a bigger body answers 413
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/outage/{channel}", outage)
    app.router.add_post("/api/restore/{channel}", restore)
    app.router.add_post("/api/tick", tick)
    app.router.add_get("/api/probes", probes)
    app.router.add_post("/api/observations", observations)
    app.router.add_post("/api/heartbeat/{name}", heartbeat)
    from continuity.public.web import add_public_routes

    add_public_routes(app, daemon)  # /banner.json, /banner.js, /status, /status.json, /voice.xml: read-only
    from continuity.console.web import add_console_routes

    # /console/: signed-in staff, their roles, CSRF-checked forms; on `daemon.console.bind` when that is
    # another address than the daemon's (the console behind the VPN, the status page public).
    own = daemon.loaded.config.daemon.console.bind
    apart = own is not None and split_bind(own) != split_bind(daemon.bind)
    console_app = web.Application(client_max_size=limits.API_BODY) if apart else app
    add_console_routes(console_app, daemon)
    console_runner = web.AppRunner(console_app, access_log=None)
    if apart:
        async def stop_console(_app: web.Application) -> None:
            await console_runner.cleanup()

        app.on_cleanup.append(stop_console)  # the daemon's runner.cleanup() stops both
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_bind(daemon.bind)
    await web.TCPSite(runner, host, port).start()
    if apart and own is not None:
        await console_runner.setup()
        try:
            await web.TCPSite(console_runner, *split_bind(own)).start()
        except OSError:
            await runner.cleanup()
            raise
    return runner
