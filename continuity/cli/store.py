"""store copy: move a store to another backend (SQLite ⇄ PostgreSQL) with its whole history, ids kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import console, esc, guarded, print_json
from continuity.errors import ContinuityError, InputError

store_app = typer.Typer(help="The store itself: copy it to another backend (SQLite to PostgreSQL and back).",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")


def _resolve(url: str, what: str) -> str:
    """The URL with its `${ENV}` / `${file:…}` references resolved (a password stays out of the shell's history
    and of `ps`); a relative sqlite:/// path is relative to the current folder."""
    from continuity.config.envrefs import EnvRefError, resolve_refs

    try:
        return resolve_refs(url, base_dir=Path.cwd())
    except EnvRefError as exc:
        raise InputError(f"{what}: {exc}") from None


def _open(url: str, what: str, shown: str, *, must_exist: bool) -> Any:
    from continuity.store import open_store, store_path
    from continuity.store.pg_url import is_postgres_url

    if not is_postgres_url(url):
        path = store_path(url, Path.cwd())  # InputError for an unknown scheme
        if must_exist and not path.is_file():
            raise InputError(f"{what} {shown}: no store file at {path}")
    try:
        return open_store(url, Path.cwd())
    except ContinuityError as exc:  # the store's message names the URL already (its password hidden)
        exc.message = f"{what}: {exc.message}"
        raise


@store_app.command("copy")
@guarded
def copy(
    src_url: Annotated[str, typer.Argument(metavar="SRC_URL", help="The store to copy: sqlite:///path/continuity.db "
                                                                  "or postgresql://USER@HOST:PORT/DB.")],
    dst_url: Annotated[str, typer.Argument(metavar="DST_URL", help="Where to copy it (created and migrated if new).")],
    force: Annotated[bool, typer.Option("--force", help="Replace the contents of a destination that is not "
                                                        "empty.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Copy every situation, the ledger (steps, events, send marks), maintenance windows, the auto-responder's
    state, campaigns (runs and versions) and console users from SRC_URL to DST_URL, keeping their ids.

    The destination must be empty unless --force; the count of every table is checked before the copy is
    committed, so it is all there or not at all. A password goes in as ${ENV_VAR} (quoted, so the shell leaves it
    alone: 'postgresql://continuity:${PGPASSWORD}@db/continuity') or comes from PGPASSWORD / PGPASSFILE.
    """
    from continuity.store.pg_url import safe_url
    from continuity.store.store_copy import copy_store

    src_shown, dst_shown = safe_url(src_url), safe_url(dst_url)
    src, dst = _resolve(src_url, "SRC_URL"), _resolve(dst_url, "DST_URL")
    if src == dst:
        raise InputError(f"SRC_URL and DST_URL are the same store ({src_shown})")
    source = _open(src, "SRC_URL", src_shown, must_exist=True)
    try:
        dest = _open(dst, "DST_URL", dst_shown, must_exist=False)
        try:
            result = copy_store(source, dest, force=force, dst_name=f"DST_URL {dst_shown}")
        finally:
            dest.close()
    finally:
        source.close()
    if as_json:
        print_json({"ok": True, "source": src_shown, "destination": dst_shown, "tables": result.counts,
                    "replaced": result.replaced})
        return
    out = console()
    out.print(f"[green]copied[/] {esc(src_shown)} → {esc(dst_shown)}" + (" (its earlier contents replaced)"
                                                                       if result.replaced else ""))
    for table, n in result.counts.items():
        out.print(f"  {table:<20} {n:>8}  [dim]verified[/]")
