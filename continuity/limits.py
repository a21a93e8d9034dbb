"""How long free text may be, wherever it comes in: the command line, the HTTP API, campaign files.

A megabyte of `--reason` would go into every message, page and post. Each limit is far above what a person
writes and far below what breaks a message; an error names the field and its limit, and changes nothing.
"""

from __future__ import annotations

from continuity.errors import InputError

REASON = 500  # what broke, in a sentence or two (--reason, maintenance --reason, the API's "reason")
NOTE = 1000  # what fixed it (--note, the API's "note")
BY = 100  # a person's name (--by, the API's "by")
TITLE = 200  # a campaign's title, an FAQ question
TEXT = 4000  # a campaign's terms, an FAQ answer, a template answer
SHORT = 300  # a discount, a minimum order, an owner, a note of a code
API_BODY = 64 * 1024  # bytes of one HTTP request body


def check_length(field: str, value: str | None, limit: int) -> None:
    """InputError naming `field` when `value` is longer than `limit` characters, or is not text at all (bytes
    that are not UTF-8 on the command line, a lone surrogate in JSON): it could be neither stored nor sent."""
    if value is None:
        return
    if len(value) > limit:
        raise InputError(f"{field} is {len(value):,} characters long; at most {limit:,} are allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{field} is not valid text (character {exc.start + 1} cannot be encoded as UTF-8)") \
            from None
