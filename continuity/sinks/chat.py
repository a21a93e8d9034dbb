"""Staff chat (Slack, Teams, Matrix, Discord, ntfy...) through apprise URLs.

Apprise URLs embed a token, so each must be written with a `${ENV}` reference (whole or in part) and is
masked in reprs: no outcome names a URL, only its position ("chat target 2 of 3"),
and apprise's own log lines have the URLs blanked while this sink is talking through it.

Each target's progress is a send mark in the store (the part is a digest of the target's URL, so the marks
follow a target when the list is reordered and never hold its token): `ending` just before apprise is handed
the message, `sent` once it reported the message delivered. A retry or a restart skips targets already sent;
one whose sending was cut off (the process was killed, the runner gave up waiting) is `uncertain` for a person
to settle, never a second copy. apprise reports only delivered or not: a target it reports not delivered (the
service refused, or could not be reached, or did not answer in time) is forgotten and tried again, as before.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import TYPE_CHECKING, Any

from pydantic import Field

from continuity.config.envrefs import EnvSourced
from continuity.redact import Redactor, url_pieces
from continuity.sinks.base import Action, Outcome, Sink, SinkContext, SinkSettings

if TYPE_CHECKING:
    import apprise

LOCALE_SEPARATOR = "\n\n" + "-" * 40 + "\n\n"
HIDDEN = "<chat url hidden>"
# Loggers that see URLs while apprise sends (filters on a logger do not apply to its children's records).
_LOGGERS = ("apprise", "urllib3.connectionpool")


class ChatSettings(SinkSettings):
    """One apprise URL per chat room or service."""

    urls: list[EnvSourced] = Field(min_length=1)


def _redactor(urls: list[str]) -> Redactor:
    """Blanks the configured URLs, and every token-sized piece of them, in log records.

    A token can sit anywhere in an apprise URL (user, password, host, a path segment, a query value) and
    libraries log pieces of it ("POST /hooks/<token>"), so each piece of eight characters or more is hidden,
    case-insensitively because hosts get lower-cased on the way.
    """
    pieces: set[str] = set()
    for url in urls:
        pieces |= {url, url.split("://", 1)[-1]} | url_pieces(url, 8)
    return Redactor(pieces, HIDDEN, ignore_case=True)


def chat_text(action: Action) -> str:
    """Every locale's body, primary first; the title alone when the template has no body."""
    body = LOCALE_SEPARATOR.join(r.body.strip("\n") for r in action.messages if r.body.strip())
    return body or action.primary.title


class ChatSink(Sink):
    """Sends title + body to every configured apprise URL; each URL is one chat target."""

    type_name = "chat"
    reads_earlier = False  # its send marks, not earlier rows, say what went out (see Runner._reads_earlier)
    Settings = ChatSettings
    actions = frozenset({"notify", "post"})
    # Re-running an action is safe: each target's progress is in the store's send marks (sent: skipped;
    # interrupted while apprise was sending: reported uncertain, never sent again), so a crash repeats nothing.
    idempotent = True
    reversible = False
    description = "a message to staff chat (Slack, Teams, Matrix, ntfy and 100+ more) through apprise"

    settings: ChatSettings

    def __init__(self, name: str, settings: SinkSettings, context: SinkContext) -> None:
        super().__init__(name, settings, context)
        self._targets: list[apprise.Apprise] | None = None
        self._redactor = _redactor(self.settings.urls)

    async def apply(self, action: Action) -> Outcome:
        if not action.messages:
            return Outcome.fail("the step rendered no message to send")
        self._redactor.install(_LOGGERS)
        targets, bad = self._load_targets()
        total = len(self.settings.urls)
        if bad:
            listed = ", ".join(str(i + 1) for i in bad)
            return Outcome.fail(
                f"chat target(s) {listed} of {total}: apprise does not understand the URL "
                "(check the scheme and the token; the URL itself is not shown because it holds a token)"
            )
        marks = self.context.marks
        parts = [target_part(url) for url in self.settings.urls]
        unsure = [i for i, part in enumerate(parts) if marks.state(action.key, part) == "ending"]
        pending = [i for i, part in enumerate(parts) if marks.state(action.key, part) is None]
        if not pending:
            return self._unsure(unsure) if unsure else Outcome.success(
                f"already sent to every chat target ({total}) by an earlier attempt")
        failed: list[int] = []
        for i in pending:
            part = parts[i]
            # Past this point the service may have the message, whatever happens to this process.
            marks.ending(action.key, part)
            if await _notify(targets[i], action.primary.title, chat_text(action)):
                marks.sent(action.key, part)
            else:  # apprise says not delivered: nothing to settle, a retry may send it
                marks.forget(action.key, part)
                failed.append(i)
        if failed:
            which = ", ".join(str(i + 1) for i in failed)
            also = f"; {self._unsure(unsure).detail}" if unsure else ""
            return Outcome.retry(f"chat target {which} of {total} failed; the service refused or did not answer"
                                 + also)
        if unsure:
            return self._unsure(unsure)
        return Outcome.success(f"sent to {total} chat target(s)")

    def _unsure(self, which: list[int]) -> Outcome:
        """Targets whose sending was cut off after apprise had the message: maybe delivered, so a person settles
        them; never sent again on our own."""
        listed = ", ".join(str(i + 1) for i in which)
        return Outcome.unsure(f"chat target {listed} of {len(self.settings.urls)} was being sent when it was "
                              "interrupted: it may have been delivered; check the chat, then `continuity settle ID "
                              "sent` or `continuity settle ID resend`")

    async def aclose(self) -> None:
        self._redactor.remove()
        self._targets = None

    def _load_targets(self) -> tuple[list[apprise.Apprise], list[int]]:
        """One Apprise object per URL, so a failure can be pinned to its target; indexes of rejected URLs."""
        if self._targets is not None:
            return self._targets, []
        # apprise loads its plugins on first use and some import deprecated stdlib modules; that warning
        # is apprise's business, not something an operator can act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise

            targets: list[apprise.Apprise] = []
            bad: list[int] = []
            for i, url in enumerate(self.settings.urls):
                ap = apprise.Apprise()
                if not ap.add(url):
                    bad.append(i)
                targets.append(ap)
        if not bad:
            self._targets = targets
        return targets, bad


def target_part(url: str) -> str:
    """The send-mark part of one chat target: a digest of its URL (stable when the list is reordered; the
    store never holds the token)."""
    return "target " + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


async def _notify(target: apprise.Apprise, title: str, body: str) -> bool:
    try:
        result: Any = await target.async_notify(title=title, body=body)
    except Exception:  # a crashing plugin is one failed delivery, never a crashed runner
        return False
    ok = bool(result)
    # apprise 2 returns a result object holding captured logs that should be released; apprise 1 a bool.
    close = getattr(result, "close", None)
    if callable(close):
        close()
    return ok
