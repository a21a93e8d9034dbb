"""Blanking secrets in third-party libraries' log lines.

Sinks hand tokens to libraries (apprise, httpx, tweepy, oauthlib) that log URLs, headers and signatures at
INFO or DEBUG. A Redactor installed on those loggers rewrites each record with every secret replaced, so the
daemon's log never carries one, whatever level an operator turns on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

HIDDEN = "**********"
_URL_SEPARATORS = re.compile(r"[/?&=@:#,]+")


def url_pieces(url: str, min_length: int) -> set[str]:
    """The parts of a URL after its scheme (user, password, host, path segments, query values) of at least
    `min_length` characters: libraries log pieces of a URL ("POST /hooks/<token>"), not only the whole."""
    rest = url.split("://", 1)[-1]
    return {p for p in _URL_SEPARATORS.split(rest) if len(p) >= min_length}


class Redactor(logging.Filter):
    """A log filter (and a plain `hide` for outcome texts) that replaces every given secret with `mask`."""

    def __init__(self, secrets: Iterable[str], mask: str = HIDDEN, *, ignore_case: bool = False) -> None:
        super().__init__()
        self.mask = mask
        # Longest first, so a whole URL is replaced before any of its pieces.
        alternatives = sorted({s for s in secrets if s}, key=len, reverse=True)
        flags = re.IGNORECASE if ignore_case else 0
        self._pattern = re.compile("|".join(map(re.escape, alternatives)), flags) if alternatives else None
        self._loggers: list[logging.Logger] = []

    def hide(self, text: str) -> str:
        return self._pattern.sub(self.mask, text) if self._pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        hidden = self.hide(text)
        if hidden != text:
            record.msg, record.args = hidden, None
        return True

    def install(self, names: Iterable[str]) -> None:
        """Filters the named loggers until `remove`; again is a no-op. Each logger that sees a secret must be
        named: a filter on a logger does not apply to its children's records."""
        if not self._loggers:
            self._loggers = [logging.getLogger(name) for name in names]
            for logger in self._loggers:
                logger.addFilter(self)

    def remove(self) -> None:
        """Takes the filter off the loggers `install` put it on."""
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers = []



MIN_SECRET = 4  # shorter values are not blanked: hiding every "25" or "ab" would garble the text


def secrets_in(value: object) -> set[str]:
    """Every secret a sink's settings hold: SecretStr values and the strings resolved from `${...}` that
    may carry a credential (`Masked`: URLs, credential headers), with the long pieces of such URLs."""
    from pydantic import BaseModel, SecretStr

    from continuity.config.envrefs import Masked

    found: set[str] = set()
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, SecretStr):
            found.add(item.get_secret_value())
        elif isinstance(item, Masked):
            found.add(str(item))
            if "://" in item:
                found |= url_pieces(item, 12)
        elif isinstance(item, BaseModel):
            stack.extend(item.__dict__.values())
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return {s for s in found if len(s) >= MIN_SECRET}
