"""`continuity store copy`: a store with real history (made by the real CLI) goes SQLite → PostgreSQL → SQLite
and every command that reads it says the same on each copy; a non-empty destination is refused unless
--force; errors name the URL that failed, never its password.

The PostgreSQL server is tests/store/pgserver.py's (initdb + pg_ctl in a temp folder, on a loopback port).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG, NOW, REPO, RunCli, run_cli

pytest.importorskip("psycopg")
from tests.store.pgserver import drop_database, fresh_database  # noqa: E402

EXAMPLE_CAMPAIGN = REPO / "playbooks" / "campaign-example.yaml"
LATER = NOW + timedelta(hours=2)
# Everything a person or a script reads from the store, at one pinned time.
READERS = (("status", "--json"), ("report", "1", "--format", "json"), ("report", "2", "--format", "json"),
           ("history", "--since", "30d", "--json"), ("maintenance", "list", "--json"),
           ("campaign", "list", "--json"), ("autoreply", "status", "--json"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_database()
    yield url
    drop_database(url)


def with_store(workdir: Path, name: str, url: str) -> Path:
    """A copy of continuity.yaml under `name` whose store.url is `url` (same folder: same outbox and paths)."""
    text = (workdir / "continuity.yaml").read_text(encoding="utf-8")
    assert "  url: sqlite:///continuity.db\n" in text
    path = workdir / name
    path.write_text(text.replace("  url: sqlite:///continuity.db\n", f"  url: {url}\n"), encoding="utf-8")
    return path


def ok(result: object) -> str:
    assert getattr(result, "returncode", None) == 0, (getattr(result, "stdout", ""), getattr(result, "stderr", ""))
    return str(getattr(result, "stdout", ""))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose store has real history, made once by the real CLI (see `make_history`)."""
    folder = tmp_path_factory.mktemp("history")
    shutil.copyfile(EXAMPLE_CONFIG, folder / "continuity.yaml")
    make_history(lambda *args, **options: run_cli(folder, *args, **options))
    return folder


@pytest.fixture
def with_history(history: Path, workdir: Path) -> Path:
    """workdir holding a copy of `history` (config, store, outbox, banner)."""
    shutil.copytree(history, workdir, dirs_exist_ok=True)
    return workdir


def make_history(cli: RunCli) -> None:
    """An outage run through to its restore, one still open, a maintenance window and a registered campaign."""
    ok(cli("outage", "phone", "--reason", "SIP trunk down at the provider", "--eta", "2h", now=NOW))
    # announced a day ahead, so the next tick opens its situation
    ok(cli("maintenance", "add", "email", "--start", "2026-11-24T09:30:00Z", "--end", "2026-11-24T11:00:00Z",
           "--reason", "mail server upgrade", "--notice", "1d", now=NOW))
    ok(cli("campaign", "register", str(EXAMPLE_CAMPAIGN), now=NOW))
    ok(cli("tick", now=NOW + timedelta(minutes=40)))  # the 30-minute banner and social post
    ok(cli("restore", "phone", "--note", "provider fixed the trunk", now=NOW + timedelta(minutes=70)))
    ok(cli("outage", "chat", "--reason", "widget does not load", now=NOW + timedelta(minutes=80)))


def readings(cli: RunCli, config: Path, readers: tuple[tuple[str, ...], ...] = READERS) -> dict[str, object]:
    """What each reader prints, parsed; they run at once (readers only: the store allows it, and it is quick)."""
    with ThreadPoolExecutor(len(readers)) as pool:
        outs = list(pool.map(lambda args: ok(cli(*args, config=config, now=LATER)), readers))
    return {" ".join(args): json.loads(out) for args, out in zip(readers, outs, strict=True)}


BRIEF = (("status", "--json"), ("history", "--since", "30d", "--json"))


def test_a_store_goes_to_postgresql_and_back_and_reads_the_same(cli: RunCli, with_history: Path, pg_url: str) -> None:
    workdir = with_history
    source = readings(cli, workdir / "continuity.yaml")
    assert len(source["status --json"]["open"]) == 2, "the source has open situations to compare"

    copied = json.loads(ok(cli("store", "copy", "sqlite:///continuity.db", pg_url, "--json")))
    conn = sqlite3.connect(workdir / "continuity.db")
    expected = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in copied["tables"]}
    conn.close()
    assert copied["tables"] == expected
    assert expected["situations"] == 3 and expected["steps"] > 10 and expected["maintenance"] == 1
    assert expected["campaigns"] == 1 and expected["campaign_versions"] == 1 and expected["events"] > 0

    on_pg = readings(cli, with_store(workdir, "pg.yaml", pg_url))
    assert on_pg == source

    ok(cli("store", "copy", pg_url, "sqlite:///back.db"))
    back = readings(cli, with_store(workdir, "back.yaml", "sqlite:///back.db"))
    assert back == source

    # the copies go on from the copied ids: the next situation is #4 everywhere
    for config in ("continuity.yaml", "pg.yaml", "back.yaml"):
        opened = json.loads(ok(cli("outage", "internet", "--reason", "uplink down", "--json",
                                   config=workdir / config, now=LATER)))
        assert opened["situation"]["id"] == 4, (config, opened)


def test_a_destination_that_is_not_empty_is_refused_unless_forced(cli: RunCli, with_history: Path, pg_url: str) -> None:
    workdir = with_history
    ok(cli("store", "copy", "sqlite:///continuity.db", pg_url))
    ok(cli("outage", "internet", "--reason", "uplink down", config=with_store(workdir, "pg.yaml", pg_url),
           now=LATER))
    before = readings(cli, workdir / "pg.yaml", BRIEF)

    refused = cli("store", "copy", "sqlite:///continuity.db", pg_url)
    assert refused.returncode == 2
    assert "is not empty (situations: 4" in refused.stderr and "--force" in refused.stderr
    assert readings(cli, workdir / "pg.yaml", BRIEF) == before  # nothing changed

    forced = cli("store", "copy", "sqlite:///continuity.db", pg_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "earlier contents replaced" in forced.stdout
    assert readings(cli, workdir / "pg.yaml", BRIEF) == readings(cli, workdir / "continuity.yaml", BRIEF)
    assert before != readings(cli, workdir / "pg.yaml", BRIEF)  # the fourth situation is gone again


def test_errors_name_the_url_that_failed_without_its_password(cli: RunCli, with_history: Path, pg_url: str) -> None:
    workdir = with_history
    secret = "pw-never-shown-7781"
    with_password = pg_url.replace("continuity@", "continuity:${TEST_PG_PASSWORD}@")
    env = {"TEST_PG_PASSWORD": secret}

    done = cli("store", "copy", "sqlite:///continuity.db", with_password, "--json", env=env)
    assert done.returncode == 0, done.stderr  # trust auth lets any password in; it was resolved and sent
    assert secret not in done.stdout + done.stderr
    assert json.loads(done.stdout)["destination"] == with_password.replace("${TEST_PG_PASSWORD}", "***")

    port = pg_url.split(":")[2].split("/")[0]
    unreachable = with_password.replace(f":{port}/", ":1/")
    failed = cli("store", "copy", unreachable, "sqlite:///x.db", env=env)
    assert failed.returncode == 1
    assert "SRC_URL: cannot connect to the store postgresql://continuity:***@127.0.0.1:1/" in failed.stderr
    assert secret not in failed.stdout + failed.stderr

    unset = cli("store", "copy", "sqlite:///continuity.db", with_password)
    assert unset.returncode == 2 and "DST_URL: environment variable TEST_PG_PASSWORD" in unset.stderr

    missing = cli("store", "copy", "sqlite:///nothing-here.db", pg_url)
    assert missing.returncode == 2 and "SRC_URL sqlite:///nothing-here.db: no store file at" in missing.stderr
    assert not (workdir / "nothing-here.db").exists()

    same = cli("store", "copy", "sqlite:///continuity.db", "sqlite:///continuity.db")
    assert same.returncode == 2 and "are the same store" in same.stderr


def test_a_postgresql_url_in_the_config(cli: RunCli, workdir: Path, pg_url: str, tmp_path: Path) -> None:
    ok(cli("init"))
    literal = with_store(workdir, "literal.yaml", pg_url.replace("continuity@", "continuity:hunter2@"))
    refused = cli("validate", config=literal)
    assert refused.returncode == 2
    assert "store.url: the URL embeds a password" in refused.stderr and "hunter2" not in refused.stderr

    # psycopg missing (a module of that name that cannot be imported stands in for an install without it)
    fake = tmp_path / "nopsycopg"
    (fake / "psycopg").mkdir(parents=True)
    (fake / "psycopg" / "__init__.py").write_text("raise ImportError('psycopg is not installed')\n")
    without = cli("status", config=with_store(workdir, "pg.yaml", pg_url), env={"PYTHONPATH": str(fake)})
    assert without.returncode == 2
    assert "store.url: a postgresql:// store needs psycopg" in without.stderr
    assert "pip install 'continuity[postgres]'" in without.stderr

    # with psycopg: the CLI runs on PostgreSQL directly
    opened = json.loads(ok(cli("outage", "phone", "--reason", "trunk down", "--json", config=workdir / "pg.yaml",
                               now=NOW)))
    status = json.loads(ok(cli("status", "--json", config=workdir / "pg.yaml", now=NOW)))
    assert [s["id"] for s in status["open"]] == [opened["situation"]["id"]]

    # a password from a reference is accepted (trust auth lets it in) and shown nowhere
    ref = with_store(workdir, "ref.yaml", pg_url.replace("continuity@", "continuity:${TEST_PG_PASSWORD}@"))
    checked = cli("validate", config=ref, env={"TEST_PG_PASSWORD": "pw-never-shown-7781"})
    assert checked.returncode == 0, checked.stderr
    same = cli("status", "--json", config=ref, now=NOW, env={"TEST_PG_PASSWORD": "pw-never-shown-7781"})
    assert json.loads(ok(same)) == status and "pw-never-shown-7781" not in same.stdout + same.stderr
