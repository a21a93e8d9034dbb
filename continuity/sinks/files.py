"""Files other programs read (a web server, a PBX), kept one entry per situation, written safely.

Several situations can be on at the same time and several processes (the daemon, a CLI command) can run a
step at the same moment, so every change is a read-merge-write under a lock file, and every file is replaced
atomically (temp file, fsync, rename) so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

from continuity.sinks.base import Outcome, Sink, SinkSettings, resolve_path

# Situation id (as a JSON key) -> that situation's entry.
Entries = dict[str, Any]

# Errors a full disk or a busy file system gives: the runner may try again later; anything else
# (permissions, a file where the directory should be) needs a person.
TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.EINTR})


class UnreadableFile(Exception):
    """A file to merge into is not one continuity wrote (someone edited it by hand): refuse, or other
    situations' entries would be lost silently."""


class FilesSettings(SinkSettings):
    """The directory the files go to and the name they share (also the lock file's)."""

    directory: str
    name: str


class LockedFilesSink(Sink):
    """Base for sinks whose state is files: subclasses read their entries and write them back.

    `apply` and `undo` pass `merge` a function from the current entries to the new ones; `read_entries` and
    `write_entries` run under the lock, off the event loop.
    """

    # What the files hold, for the error message ("cannot write the banner in …").
    noun: ClassVar[str]

    settings: FilesSettings

    @property
    def directory(self) -> Path:
        return resolve_path(self.context, self.settings.directory)

    def read_entries(self) -> Entries:
        """The entries now on disk; UnreadableFile when the file cannot be merged into."""
        raise NotImplementedError

    def write_entries(self, before: Entries, after: Entries) -> None:
        """Make the files show `after` (`before` is what they showed, for files that must go)."""
        raise NotImplementedError

    def summary(self, left: int) -> str:
        """What the outcome says after the action's own words, given the number of entries left."""
        raise NotImplementedError

    async def merge(self, change: Callable[[Entries], Entries], done: str) -> Outcome:
        import asyncio  # here, not at the top: loading a config imports the sinks, and the CLI must start fast

        # File locking and fsync block; keep them off the event loop.
        try:
            left = await asyncio.to_thread(self._update, change)
        except UnreadableFile as exc:
            return Outcome.fail(str(exc))
        except OSError as exc:
            detail = f"cannot write the {self.noun} in {self.directory}: {exc.strerror or type(exc).__name__}"
            return Outcome.retry(detail) if exc.errno in TEMPORARY_ERRNOS else Outcome.fail(detail)
        return Outcome.success(f"{done}; {self.summary(left)}")

    def _update(self, change: Callable[[Entries], Entries]) -> int:
        """Read, change and write under the lock; the number of entries left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with locked(self.directory / f".{self.settings.name}.lock"):
            before = self.read_entries()
            after = change(before)
            self.write_entries(before, after)
            return len(after)


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `lock_path` across processes.

    A separate lock file: the data files are replaced by rename, so locking them would lock a ghost.
    """
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read_json(path: Path) -> Any:
    """The document in `path`: {} when there is no file, None when it is not UTF-8 JSON (the caller refuses)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except ValueError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_atomic(path: Path, text: str) -> None:
    """Write next to the target, fsync, then rename over it: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; a web server or PBX running as another user must be able to read the file.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Makes a rename in `directory` durable; not every file system allows opening a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
