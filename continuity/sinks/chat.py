"""Staff chat (Slack, Teams, Matrix, Discord, ntfy...) through apprise URLs.

Apprise URLs embed a token, so each must be written with a `${ENV}` reference (whole or in part) and is
masked in reprs: no outcome names a URL, only its position ("chat target 2 of 3"),
and apprise's own log lines have the URLs blanked while this sink is talking through it.
"""

from __future__ import annotations

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
    Settings = ChatSettings
    actions = frozenset({"notify", "post"})
    idempotent = False
    reversible = False
    description = "a message to staff chat (Slack, Teams, Matrix, ntfy and 100+ more) through apprise"

    settings: ChatSettings

    def __init__(self, name: str, settings: SinkSettings, context: SinkContext) -> None:
        super().__init__(name, settings, context)
        self._targets: list[apprise.Apprise] | None = None
        self._redactor = _redactor(self.settings.urls)
        # (action key, target index) pairs delivered by this process: a retry only goes to the rest.
        self._delivered: set[tuple[str, int]] = set()

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
        failed: list[int] = []
        for i, target in enumerate(targets):
            if (action.key, i) in self._delivered:
                continue
            if await _notify(target, action.primary.title, chat_text(action)):
                self._delivered.add((action.key, i))
            else:
                failed.append(i)
        if not failed:
            return Outcome.success(f"sent to {total} chat target(s)")
        which = ", ".join(str(i + 1) for i in failed)
        return Outcome.retry(f"chat target {which} of {total} failed; the service refused or did not answer")

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
