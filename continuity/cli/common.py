"""Shared CLI plumbing: options, loading config and store, error handling, printing."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from continuity.clock import Clock, SystemClock, parse_clock_override
from continuity.errors import ContinuityError, ExitCode, InputError, InputErrors, Location

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.engine import Engine

P = ParamSpec("P")
R = TypeVar("R")


def _flags_without_a_type() -> None:
    """`--dry-run` is switched on by being there: --help shows no `<bool>` after a flag (typer shows one for
    every option, flags included; options that take a value keep theirs)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_a_type()


@dataclass
class State:
    config_path: Path = Path("continuity.yaml")
    debug: bool = False


STATE = State()


def clock() -> Clock:
    """The system clock, unless CONTINUITY_NOW pins it (rehearsals and tests driving real processes)."""
    pinned = os.environ.get("CONTINUITY_NOW")
    if pinned:
        try:
            return parse_clock_override(pinned)
        except ValueError:
            raise InputError(f"CONTINUITY_NOW={pinned!r} is not an ISO date-time") from None
    return SystemClock()


def who(by: str | None) -> str:
    if by:
        return by
    try:
        return os.environ.get("CONTINUITY_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def load() -> LoadedConfig:
    from continuity.config.loader import load_config

    path = STATE.config_path
    if not path.exists():
        hint = " (run `continuity init` to create one)" if path.name == "continuity.yaml" else ""
        raise InputError(f"config file not found{hint}", Location(str(path))) from None
    try:
        return load_config(path)
    except InputError as exc:  # InputErrors too: a problem found loading the config is in the config
        errors = exc.errors if isinstance(exc, InputErrors) else [exc]
        for e in errors:
            if e.location is None:
                e.location = Location(str(path))
        raise


def engine(loaded: LoadedConfig | None = None) -> Engine:
    from continuity.engine import Engine
    from continuity.variables import CONTEXT_PARTS, register_context_part

    # The campaign template variable, loaded only when a step renders (status must not pay for jinja2 and the
    # campaign models); importing continuity.campaigns registers the same part for good.
    if "campaign" not in CONTEXT_PARTS:
        register_context_part("campaign", _campaign_part)

    loaded = loaded or load()
    return Engine(loaded, store_for(loaded), clock())


def _campaign_part(*args: Any) -> Any:
    from continuity.campaigns.content import situation_campaign

    return situation_campaign(*args)


def store_for(loaded: LoadedConfig) -> Any:
    """The config's store; a busy one is waited for (saying so on stderr) up to `store.busy_timeout`."""
    from continuity.store import open_store

    def waiting(message: str) -> None:
        err_console().print(message, markup=False, highlight=False)

    return open_store(loaded.store_url, loaded.base_dir,
                      busy_timeout=loaded.config.store.busy_timeout.total_seconds(), on_wait=waiting)


def local_time(dt: datetime | None, tz: str, *, named: bool = True) -> str:
    """A moment in the organisation's zone, `2026-12-07 14:54`; with the zone's name (`CET`) when this machine's
    clock is in another zone at that moment, so nobody reads a Budapest time as their own (`named=False`: a
    table names the zone once, in its header)."""
    if dt is None:
        return "—"
    from zoneinfo import ZoneInfo

    text = dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    return f"{text}{zone_name(dt, tz)}" if named else text


def zone_name(dt: datetime, tz: str) -> str:
    """` CET` when the organisation's zone differs from this machine's at that moment, else nothing."""
    from zoneinfo import ZoneInfo

    there = dt.astimezone(ZoneInfo(tz))
    return "" if there.utcoffset() == dt.astimezone().utcoffset() else f" {there.strftime('%Z')}"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def esc(value: object) -> str:
    """Text from users, files or remote servers, made safe to put next to Rich markup.

    Square brackets in such text (`[/x]`, a regex like `[a-z]`, a server banner) would otherwise be read as
    markup: a MarkupError traceback or silently eaten characters. Fixed labels keep their markup.
    """
    from rich.markup import escape

    return escape(str(value))


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors into one clean message and exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except ContinuityError as exc:
            if STATE.debug:
                raise
            report_error(exc, as_json)
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if STATE.debug:
                raise
            report_error(ContinuityError(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"),
                         as_json)
            raise typer.Exit(int(ExitCode.FAILED)) from None

    return wrapper


def report_error(exc: ContinuityError, as_json: bool) -> None:

    # Errors about the config carry its location (see `load`); the others are about the command line.
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    if as_json:
        print_json({"ok": False, "exit_code": int(exc.exit_code),
                    "errors": [{"message": e.message, "file": e.location.file if e.location else None,
                                "line": e.location.line if e.location else None,
                                "field": e.location.field if e.location else None} for e in errors]})
        return
    label = "error" if exc.exit_code == ExitCode.BAD_INPUT else "failed"
    out = err_console()
    for e in errors:
        out.print(f"[bold red]{label}:[/] {esc(e)}", markup=True, highlight=False, soft_wrap=True)


