"""Users, sessions and the sign-in throttle in the store (through continuity.console.auth), and the
`continuity user` commands as a person runs them: bad input exits 2 naming the field and changes nothing,
and no password or hash is ever printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuity.console.auth import (
    THROTTLE_FAILURES,
    THROTTLE_WINDOW,
    can,
    hash_password,
    session_hash,
    sign_in,
)
from continuity.store.sqlite import SqliteStore
from tests.console.kit import cli, write_config

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TTL = timedelta(hours=12)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "s.db")
    with s.transaction():
        s.add_user(name="olga", role="oncall", password_hash=hash_password("right-password"), at=NOW)
    return s


def test_a_session_is_kept_by_the_hash_of_its_id_and_expires(store: SqliteStore) -> None:
    done = sign_in(store, "olga", "right-password", "192.0.2.1", NOW, TTL)
    assert done.session_id and done.user is not None and done.user.name == "olga"
    assert store.get_session(done.session_id, NOW) is None  # the id itself is not a key
    found = store.get_session(session_hash(done.session_id), NOW + TTL - timedelta(seconds=1))
    assert found is not None and found.user_name == "olga" and len(found.csrf) >= 32
    assert store.get_session(session_hash(done.session_id), NOW + TTL) is None
    assert "argon2" not in repr(store.get_user("olga")) and done.session_id not in repr(found)


def test_the_throttle_counts_per_user_and_address_within_the_window(store: SqliteStore) -> None:
    for i in range(THROTTLE_FAILURES):
        assert sign_in(store, "olga", "guess", "192.0.2.1", NOW + timedelta(seconds=i), TTL).session_id is None
    assert sign_in(store, "olga", "right-password", "192.0.2.1", NOW + timedelta(minutes=1), TTL).throttled
    # Another address, or the same one once the window has passed, signs in.
    assert sign_in(store, "olga", "right-password", "198.51.100.7", NOW + timedelta(minutes=1), TTL).session_id
    later = NOW + THROTTLE_WINDOW + timedelta(seconds=THROTTLE_FAILURES)
    ok = sign_in(store, "olga", "right-password", "192.0.2.1", later, TTL)
    assert ok.session_id and not ok.throttled
    # A success forgets that pair's failures.
    assert store.login_failures(user_name="olga", address="192.0.2.1", since=NOW) == 0


def test_unknown_users_fail_like_wrong_passwords_and_count_too(store: SqliteStore) -> None:
    for name in ("nobody", ""):
        result = sign_in(store, name, "right-password", "192.0.2.1", NOW, TTL)
        assert result.session_id is None and not result.throttled
    assert store.login_failures(user_name="nobody", address="192.0.2.1", since=NOW) == 1


def test_password_change_and_removal_end_sessions(store: SqliteStore) -> None:
    first = sign_in(store, "olga", "right-password", "192.0.2.1", NOW, TTL).session_id
    assert first
    with store.transaction():
        assert store.set_user_password("olga", hash_password("another-password"), NOW)
    assert store.get_session(session_hash(first), NOW) is None
    second = sign_in(store, "olga", "another-password", "192.0.2.1", NOW, TTL).session_id
    assert second
    with store.transaction():
        assert store.remove_user("olga") and not store.remove_user("olga")
    assert store.get_session(session_hash(second), NOW) is None and store.users() == []


@pytest.mark.parametrize(("role", "action", "allowed"), [
    ("oncall", "declare", True), ("oncall", "campaigns", True), ("oncall", "maintenance", True),
    ("marketing", "campaigns", True), ("marketing", "declare", False), ("marketing", "restore", False),
    ("viewer", "campaigns", False), ("viewer", "settle", False), ("nobody", "declare", False),
])
def test_roles(role: str, action: str, allowed: bool) -> None:
    assert can(role, action) is allowed


def test_user_commands(tmp_path: Path) -> None:
    write_config(tmp_path, 18765)
    added = cli(tmp_path, "user", "add", "olga", "--role", "oncall", "--password-stdin", "--json",
                stdin="s3cret-password\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"ok": True, "user": {"name": "olga", "role": "oncall"}}
    for args, stdin, words in [
        (("user", "add", "olga", "--role", "viewer", "--password-stdin"), "another-pass\n", "exists already"),
        (("user", "add", "bob", "--role", "admin", "--password-stdin"), "another-pass\n", "--role"),
        (("user", "add", "bob", "--role", "viewer", "--password-stdin"), "short\n", "at least 8"),
        (("user", "add", "bad name!", "--role", "viewer", "--password-stdin"), "another-pass\n", "user name"),
        (("user", "add", "bob", "--role", "viewer"), "", "--password-stdin"),  # no terminal to ask at
        (("user", "remove", "nobody"), None, "no user 'nobody'"),
        (("user", "passwd", "nobody", "--password-stdin"), "another-pass\n", "no user 'nobody'"),
    ]:
        run = cli(tmp_path, *args, stdin=stdin)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert words in run.stderr and "Traceback" not in run.stderr, run.stderr
    listed = cli(tmp_path, "user", "list", "--json")
    assert [u["name"] for u in json.loads(listed.stdout)] == ["olga"]
    assert "argon2" not in listed.stdout and "s3cret" not in listed.stdout
    table = cli(tmp_path, "user", "list")
    assert "olga" in table.stdout and "oncall" in table.stdout
    assert cli(tmp_path, "user", "passwd", "olga", "--password-stdin", stdin="new-password-1\n").returncode == 0
    assert cli(tmp_path, "user", "remove", "olga").returncode == 0
    assert json.loads(cli(tmp_path, "user", "list", "--json").stdout) == []
