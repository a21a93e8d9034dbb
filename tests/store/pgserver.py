"""A real PostgreSQL server for the tests: Debian's binaries, a private cluster in a temporary folder.

`server()` starts one per test session, on first use (`initdb` with trust auth and no fsync, `pg_ctl start` on a
free loopback port, the Unix socket in the temp folder, never /var/run), and stops it when the interpreter exits.
Running as root, initdb and the server run as the `postgres` OS user, as PostgreSQL insists.
`fresh_database()` gives every caller an empty database of its own (CREATE DATABASE from a template holding the
schema and no rows), so tests never meet each other's rows; `drop_database` removes it again (WITH FORCE:
connections a test left open are closed).

Without the binaries the tests that need them are skipped, except under CI (CI=true), where that is a failure:
scripts/test.sh installs Debian's `postgresql` package.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USER = "continuity"


@dataclass
class PgServer:
    bindir: Path
    datadir: Path
    port: int
    as_postgres: bool
    _admin: Any = None
    options: str = ""
    logfile: Path | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database (outside a transaction: CREATE DATABASE needs it), on
        one connection kept for the session."""
        import psycopg

        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.url(), autocommit=True)
        self._admin.execute(sql)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server. `immediate` (the end of the session) may lose the last commits, as this server runs
        with synchronous_commit off for speed; `fast` (a restart under running clients) keeps every commit."""
        if self._admin is not None:
            self._admin.close()
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"], check=False)

    def start(self) -> None:
        """Start the server again after stop() (the cluster tests take the database away under running
        daemons and give it back)."""
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", self.options, "-l",
                    str(self.logfile), "-w", "start"])


_SERVER: PgServer | None = None
_COUNTER = itertools.count(1)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(srv: PgServer, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if srv.as_postgres:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)


def server() -> PgServer:
    """The session's server, started on first use."""
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    bindir = _bindir()
    if bindir is None:
        message = "PostgreSQL's binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_postgres = os.geteuid() == 0
    top = Path(tempfile.mkdtemp(prefix="continuity-pg-"))
    top.chmod(0o700)
    if as_postgres:
        pw = pwd.getpwnam("postgres")
        os.chown(top, pw.pw_uid, pw.pw_gid)
    srv = PgServer(bindir, top / "data", _free_port(), as_postgres, logfile=top / "log")
    _run(srv, [str(bindir / "initdb"), "-D", str(srv.datadir), "-A", "trust", "-U", USER, "-E", "UTF8",
               "--locale=C.UTF-8", "--no-sync"])
    options = (f"-p {srv.port} -k {top} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
               " -c full_page_writes=off -c max_connections=200")
    srv.options = options
    started = _run(srv, [str(bindir / "pg_ctl"), "-D", str(srv.datadir), "-o", options, "-l", str(top / "log"),
                         "-w", "start"], check=False)
    if started.returncode != 0:
        log = (top / "log").read_text(errors="replace") if (top / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{log}")

    def stop() -> None:
        srv.stop()
        shutil.rmtree(top, ignore_errors=True)

    atexit.register(stop)
    _SERVER = srv
    return srv


_TEMPLATE = "continuity_template"
_templated = False


def fresh_database(*, schema: bool = True) -> str:
    """The URL of a new database on the session's server, without a row in it. With `schema` it is a copy of a
    template that PostgresStore migrated once this session (a copy costs less than migrating each time: the
    suite stays fast); without, it is bare, for the tests of migrating itself."""
    global _templated
    srv = server()
    if schema and not _templated:
        from continuity.store.postgres import PostgresStore

        srv.admin(f"DROP DATABASE IF EXISTS {_TEMPLATE}")
        srv.admin(f"CREATE DATABASE {_TEMPLATE}")
        PostgresStore(srv.url(_TEMPLATE)).close()  # CREATE DATABASE … TEMPLATE wants nobody connected to it
        _templated = True
    name = f"t{os.getpid()}_{next(_COUNTER)}"
    srv.admin(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE if schema else 'template1'}")
    return srv.url(name)


def drop_database(url: str) -> None:
    srv = server()
    srv.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
