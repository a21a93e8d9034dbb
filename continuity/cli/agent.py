"""agent: watch channels from a remote site (an office behind NAT) and report to the daemon."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer

from continuity.cli import app
from continuity.cli.common import guarded
from continuity.errors import InputError


@app.command()
@guarded
def agent(
    server: Annotated[str, typer.Option("--server", help="The daemon's URL, e.g. https://continuity.example.test "
                                        "(its daemon.bind, behind your proxy).")],
    vantage: Annotated[str, typer.Option("--vantage", help="This site's vantage name, as the daemon's probes "
                                         "list it in `vantages: [...]`.")],
    token_env: Annotated[str, typer.Option("--token-env", help="The environment variable holding the daemon's "
                                           "API token.")] = "CONTINUITY_API_TOKEN",
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (one line per event).")] = "text",
) -> None:
    """Run this site's probes and report them to the daemon, until stopped.

    Needs no config file, no database and no inbound connection: it fetches the probes assigned to its
    vantage from the daemon, runs them on schedule and posts the results (those posts are its heartbeat).
    `${VAR}` references in the probes are read from this machine's environment. A server that is away is
    retried with backoff; a token the server refuses exits 2. Stop with SIGTERM or Ctrl-C.
    """
    import asyncio

    from continuity import logs
    from continuity.agent import Agent, AgentAuthError, run_agent

    if log_format not in ("text", "json"):
        raise InputError(f"--log-format {log_format!r}: expected text or json")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", server):
        raise InputError(f"--server {server!r}: expected the daemon's URL, http(s)://HOST[:PORT]")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", vantage):
        raise InputError(f"--vantage {vantage!r}: expected a name (lower-case letters, digits, - and _)")
    token = os.environ.get(token_env, "")
    if not token:
        raise InputError(f"--token-env: the variable {token_env} is not set; put the daemon's API token in it")
    log = logs.setup(log_format)
    worker = Agent(server, vantage, token, log)
    try:
        asyncio.run(run_agent(worker))
    except AgentAuthError as exc:
        raise InputError(str(exc)) from None
