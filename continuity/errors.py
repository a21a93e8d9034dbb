"""One exception family for everything a user can get wrong, and the exit codes.

    ContinuityError            base: a message for the operator, never a traceback
    ├── InputError             bad config, playbook, template, argument (exit 2); carries file:line field
    ├── OperationFailed        the operation ran but something in it failed (exit 1)
    ├── StoreBusy              the store stayed locked by another process for too long (exit 75)
    │   └── StoreUnavailable   the store's server cannot be reached (PostgreSQL down or away)
    └── Fenced                 a cluster node that lost the lead tried to record (nothing was)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    # The store was locked by another process (a backup, a stuck command) longer than `store.busy_timeout`:
    # nothing was recorded, run the command again. 75 is sysexits' EX_TEMPFAIL.
    STORE_BUSY = 75


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, a 1-based line (when known), and a dotted field path."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
        if self.field:
            out += f" {self.field}"
        return out


class ContinuityError(Exception):
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class InputError(ContinuityError):
    """Bad input from the operator: nothing was changed."""

    exit_code = ExitCode.BAD_INPUT


class InputErrors(InputError):
    """Several input problems found in one pass, reported together."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return self.message


class OperationFailed(ContinuityError):
    exit_code = ExitCode.FAILED


class StoreBusy(ContinuityError):
    """Another process held the store's write lock longer than we may wait: nothing of this command was
    recorded, so running it again is safe."""

    exit_code = ExitCode.STORE_BUSY


class StoreUnavailable(StoreBusy):
    """The store's server is gone or unreachable (a PostgreSQL restart, a network cut): like a busy store,
    nothing was recorded and the same operation can run again later."""


class Fenced(OperationFailed):
    """A daemon that led the cluster under an epoch the lease has moved past tried to write: refused, so a
    leader that lost its lock can neither record nor send."""
