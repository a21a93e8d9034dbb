"""Who claimed a row: host, pid and the process's start time, so a crashed owner is told from a live one
across pid reuse. The ledger's steps and the auto-responder's answers use the same owners.

A cluster's leader adds the epoch it leads under (`host:pid:start#e7`): a row claimed under an older epoch
belongs to a node that lost the lead, and that node is fenced (it can record nothing more about the row, see
store/pg_cluster.py), so the leader after it treats the row as a crashed one, whichever host it was on."""

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


_EPOCH = "#e"
_led_epoch: int | None = None  # the epoch this process leads its cluster under, if it does


def lead_under(epoch: int | None) -> None:
    """This process leads its cluster under `epoch` from now on (None: it does not lead)."""
    global _led_epoch
    _led_epoch = epoch


def current_owner() -> str:
    pid = os.getpid()
    base = f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"
    return base if _led_epoch is None else f"{base}{_EPOCH}{_led_epoch}"


def owner_epoch(owner: str) -> int | None:
    _, sep, epoch = owner.partition(_EPOCH)
    return int(epoch) if sep and epoch.isdigit() else None


def owner_alive(owner: str | None) -> bool:
    """Is the process that claimed a step still running? A leader of an older epoch is not (it is fenced);
    otherwise unknown hosts count as alive (never guess)."""
    if not owner:
        return False
    epoch = owner_epoch(owner)
    if epoch is not None and _led_epoch is not None and epoch < _led_epoch:
        return False
    try:
        host, pid_text, start = owner.partition(_EPOCH)[0].rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return _proc_start(pid) == start and start != "?"
