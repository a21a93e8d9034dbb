"""Who claimed a row: host, pid and the process's start time, so a crashed owner is told from a live one
across pid reuse. The ledger's steps and the auto-responder's answers use the same owners."""

from __future__ import annotations

import os
import socket


def _proc_start(pid: int) -> str:
    """The kernel's start time of a process: with the pid, it identifies the process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def current_owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"


def owner_alive(owner: str | None) -> bool:
    """Is the process that claimed a step still running? Unknown hosts count as alive (never guess)."""
    if not owner:
        return False
    try:
        host, pid_text, start = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return _proc_start(pid) == start and start != "?"
