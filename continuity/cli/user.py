"""user add / list / remove / passwd: who may sign in to the console at /console/, and in which role."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from continuity.cli import app
from continuity.cli.common import console, esc, guarded, load, print_json, store_for
from continuity.errors import InputError

users = typer.Typer(help="Console users: `oncall` does everything, `marketing` manages campaigns, `viewer` reads.",
                    no_args_is_help=True)
app.add_typer(users, name="user")

_STDIN_HELP = "Read the password from the first line of standard input (scripts); otherwise it is asked for."


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a terminal (never an argument: `ps` shows those)."""
    from continuity.console.auth import check_password

    if from_stdin:
        line = sys.stdin.readline()
        return check_password(line.rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password: pass --password-stdin and write it on stdin")
    import getpass

    first = getpass.getpass("Password: ")
    check_password(first)
    if getpass.getpass("Password again: ") != first:
        raise InputError("password: the two entries differ; nothing was changed")
    return first


@users.command("add")
@guarded
def add(
    name: Annotated[str, typer.Argument(help="The user name they sign in with.")],
    role: Annotated[str, typer.Option("--role", help="oncall, marketing or viewer.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=_STDIN_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a console user with a role; the password is hashed with argon2 before it is stored."""
    from continuity.cli.common import clock
    from continuity.console.auth import check_name, check_role, hash_password

    check_name(name)
    check_role(role)
    store = store_for(load())
    if store.get_user(name) is not None:
        raise InputError(f"user {name!r} exists already; `continuity user passwd {name}` changes the password")
    hashed = hash_password(_password(password_stdin))
    with store.transaction():
        if store.get_user(name) is not None:
            raise InputError(f"user {name!r} exists already")
        store.add_user(name=name, role=role, password_hash=hashed, at=clock().now())
    if as_json:
        print_json({"ok": True, "user": {"name": name, "role": role}})
    else:
        console().print(f"User {name} added ({role}); they sign in at /console/ of the daemon.", markup=False)


@users.command("list")
@guarded
def list_users(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List console users and their roles (never their password hashes)."""
    found = store_for(load()).users()
    if as_json:
        print_json([{"name": u.name, "role": u.role, "created_at": u.created_at.isoformat(),
                     "updated_at": u.updated_at.isoformat()} for u in found])
        return
    from rich.table import Table

    table = Table(title="Console users", title_justify="left")
    for col in ("name", "role", "since"):
        table.add_column(col)
    for u in found:
        table.add_row(esc(u.name), esc(u.role), u.created_at.strftime("%Y-%m-%d"))
    console().print(table)


@users.command("remove")
@guarded
def remove(
    name: Annotated[str, typer.Argument(help="The user to remove.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove a console user; their sessions end at once."""
    store = store_for(load())
    with store.transaction():
        removed = store.remove_user(name)
    if not removed:
        raise InputError(f"no user {name!r} (see `continuity user list`)")
    if as_json:
        print_json({"ok": True, "removed": name})
    else:
        console().print(f"User {name} removed; their sessions have ended.", markup=False)


@users.command("passwd")
@guarded
def passwd(
    name: Annotated[str, typer.Argument(help="Whose password to change.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=_STDIN_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Set a console user's password; their sessions end (they sign in again)."""
    from continuity.cli.common import clock
    from continuity.console.auth import hash_password

    store = store_for(load())
    if store.get_user(name) is None:
        raise InputError(f"no user {name!r} (see `continuity user list`)")
    hashed = hash_password(_password(password_stdin))
    with store.transaction():
        changed = store.set_user_password(name, hashed, clock().now())
    if not changed:
        raise InputError(f"no user {name!r}")
    if as_json:
        print_json({"ok": True, "user": name})
    else:
        console().print(f"Password of {name} changed; their sessions have ended.", markup=False)
