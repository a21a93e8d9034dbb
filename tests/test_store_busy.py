"""A busy store never loses a command: two first commands on a folder with no store yet wait for each other,
and a store locked longer than `store.busy_timeout` ends with exit 75, a message naming the file, and nothing
recorded."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

from continuity.errors import ExitCode
from tests.crashkit import SmtpServer, cli_args, cli_env, fresh_workdir, write_config

T0 = "2026-11-23T09:00:00+00:00"


def test_two_first_commands_on_a_fresh_folder_both_land(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        for i in range(10):
            workdir = fresh_workdir(tmp_path, f"pair{i}")
            config = write_config(workdir, smtp.port)
            assert not (workdir / "continuity.db").exists()
            procs = [subprocess.Popen(cli_args(config, "outage", channel, "--reason", "down"), cwd=workdir,
                                      env=cli_env(T0), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for channel in ("phone", "email")]
            outs = [p.communicate(timeout=60) for p in procs]
            assert [p.returncode for p in procs] == [0, 0], outs
            conn = sqlite3.connect(workdir / "continuity.db")
            try:
                channels = sorted(c for (c,) in conn.execute("SELECT channel FROM situations WHERE state = 'open'"))
            finally:
                conn.close()
            assert channels == ["email", "phone"], outs


def test_five_first_commands_at_once_all_land(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        workdir = fresh_workdir(tmp_path, "five")
        config = write_config(workdir, smtp.port)
        commands = [("outage", "phone", "--reason", "trunk down"), ("outage", "email", "--reason", "relay down"),
                    ("outage", "chat", "--reason", "widget down"), ("status", "--json"),
                    ("maintenance", "add", "internet", "--start", "2d", "--end", "50h", "--reason", "ISP works")]
        procs = [subprocess.Popen(cli_args(config, *args), cwd=workdir, env=cli_env(T0), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for args in commands]
        outs = [p.communicate(timeout=90) for p in procs]
        assert [p.returncode for p in procs] == [0] * 5, outs
        conn = sqlite3.connect(workdir / "continuity.db")
        try:
            channels = sorted(c for (c,) in conn.execute("SELECT channel FROM situations WHERE state = 'open'"))
            windows = conn.execute("SELECT channel FROM maintenance").fetchall()
        finally:
            conn.close()
        assert channels == ["chat", "email", "phone"] and windows == [("internet",)]


def _hold_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process (a backup tool, a stuck command) holding the store's write lock."""
    script = ("import sqlite3, sys, time\n"
              "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "c.execute('BEGIN IMMEDIATE')\n"
              "print('locked', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "c.execute('ROLLBACK')\n")
    proc = subprocess.Popen(["python3", "-c", script, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _config_with_timeout(workdir: Path, port: int, timeout: str) -> Path:
    config = write_config(workdir, port)
    text = config.read_text(encoding="utf-8")
    assert "  busy_timeout: 30s\n" in text
    config.write_text(text.replace("  busy_timeout: 30s\n", f"  busy_timeout: {timeout}\n"), encoding="utf-8")
    return config


def test_a_store_locked_too_long_exits_75_and_records_nothing(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        workdir = fresh_workdir(tmp_path, "busy")
        config = _config_with_timeout(workdir, smtp.port, "2s")
        first = subprocess.run(cli_args(config, "status"), cwd=workdir, env=cli_env(T0), capture_output=True,
                               text=True, timeout=60)
        assert first.returncode == 0, first.stderr  # the store exists, with its schema
        holder = _hold_lock(workdir / "continuity.db", 30)
        try:
            started = time.monotonic()
            out = subprocess.run(cli_args(config, "outage", "phone", "--reason", "down"), cwd=workdir,
                                 env=cli_env(T0), capture_output=True, text=True, timeout=60)
            waited = time.monotonic() - started
        finally:
            holder.kill()
            holder.communicate()
        assert out.returncode == ExitCode.STORE_BUSY == 75, out.stdout + out.stderr
        assert "continuity.db is busy, waiting" in out.stderr
        assert f"{workdir / 'continuity.db'} is busy" in out.stderr and "nothing was recorded" in out.stderr
        assert "internal error" not in out.stderr
        assert 2 <= waited < 15
        conn = sqlite3.connect(workdir / "continuity.db")
        try:
            assert conn.execute("SELECT COUNT(*) FROM situations").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM steps").fetchone() == (0,)
        finally:
            conn.close()
        assert not (workdir / "outbox").exists() or not list((workdir / "outbox").iterdir())
        assert smtp.recorder.messages == []


def test_a_store_freed_within_the_timeout_takes_the_command(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        workdir = fresh_workdir(tmp_path, "briefly")
        config = _config_with_timeout(workdir, smtp.port, "20s")
        assert subprocess.run(cli_args(config, "status"), cwd=workdir, env=cli_env(T0), capture_output=True,
                              timeout=60).returncode == 0
        holder = _hold_lock(workdir / "continuity.db", 1.5)
        out = subprocess.run(cli_args(config, "outage", "phone", "--reason", "down", "--json"), cwd=workdir,
                             env=cli_env(T0), capture_output=True, text=True, timeout=60)
        holder.communicate()
        assert out.returncode == 0, out.stdout + out.stderr
        assert "continuity.db is busy, waiting" in out.stderr  # it said why it paused
        conn = sqlite3.connect(workdir / "continuity.db")
        try:
            assert conn.execute("SELECT channel FROM situations").fetchall() == [("phone",)]
        finally:
            conn.close()
