"""`campaign register` without a file: the main fields as flags, turned into the data a campaign file holds.

The flags build the same `Campaign` model a file does and go through the same checks; only the places
errors point at differ: a flag instead of a file and line (`command line --start: no timezone …`). As in a
file, --name, --start and --end are enough to register early (the rest is listed as still missing). FAQ
entries and template answers only come from files (they are per-locale, multi-line texts), so a campaign
registered with flags has an empty FAQ and relies on its FAQ page (`--faq-url`, else the website).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from continuity.campaigns.model import Campaign
from continuity.config.loader import validation_errors
from continuity.config.yamlsrc import Document, Path_, dotted
from continuity.errors import InputError, InputErrors, Location

SOURCE = "command line"
# Campaign field → the flag that sets it. `faq` has no flag: its problems point at --faq-url, its stand-in.
FLAGS = {"name": "--name", "title": "--title", "start": "--start", "end": "--end", "terms": "--terms",
         "codes": "--code", "channels": "--channel", "load": "--load", "faq_url": "--faq-url", "faq": "--faq-url"}


@dataclass
class Flags:
    """The values given on the command line (None or empty: not given)."""

    name: str | None = None
    title: str | None = None
    start: str | None = None
    end: str | None = None
    terms: str | None = None
    codes: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    load: str | None = None
    faq_url: str | None = None

    def given(self) -> bool:
        return any(v for v in vars(self).values())


@dataclass
class FlagsDocument(Document):
    """A Document whose locations name flags: `codes[1].discount` is `--code BF26=` as typed."""

    raw: dict[str, list[str]] = field(default_factory=dict)

    def loc(self, path: Path_) -> Location:
        if not path:
            return Location(self.file)
        head = str(path[0])
        flag = FLAGS.get(head)
        if flag is None:
            return Location(self.file, None, dotted(path))
        if len(path) > 1 and isinstance(path[1], int) and head in self.raw and path[1] < len(self.raw[head]):
            return Location(self.file, None, f"{flag} {self.raw[head][path[1]]}")
        return Location(self.file, None, flag)


def _code(text: str) -> dict[str, str]:
    code, sep, description = text.partition("=")
    if not sep or not code.strip() or not description.strip():
        raise InputError("expected CODE=DESCRIPTION, e.g. --code BF26='20% off orders from 40 €' (conditions "
                         "such as a minimum order or channels need a campaign file)",
                         Location(SOURCE, None, f"--code {text}"))
    return {"code": code.strip(), "discount": description.strip()}


def _codes(flags: Flags, errors: list[InputError]) -> tuple[list[dict[str, str]], list[str]]:
    """The codes that could be read, and each one as it was typed (for error locations)."""
    codes, typed = [], []
    for text in flags.codes:
        try:
            codes.append(_code(text))
            typed.append(text)
        except InputError as exc:
            errors.append(exc)
    return codes, typed


def _given(flags: Flags) -> dict[str, object]:
    return {key: value for key, value in (
        ("name", flags.name), ("title", flags.title), ("start", flags.start), ("end", flags.end),
        ("terms", flags.terms), ("load", flags.load), ("faq_url", flags.faq_url)) if value is not None}


def _validated(data: dict[str, object], doc: FlagsDocument, errors: list[InputError]) -> tuple[Campaign, Document]:
    doc.data = data
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        for error in validation_errors(doc, exc):
            if error.message == "required field is missing" and error.location is not None:
                error = InputError("required without a campaign FILE", error.location)
            errors.append(error)
        raise InputErrors(errors) from None
    if errors:
        raise InputErrors(errors)
    return campaign, doc


def from_flags(flags: Flags) -> tuple[Campaign, Document]:
    """The campaign the flags describe, or InputErrors naming each flag that is missing or wrong (all of them
    at once, as for a file)."""
    errors: list[InputError] = []
    codes, typed = _codes(flags, errors)
    doc = FlagsDocument(SOURCE, None, raw={"codes": typed, "channels": list(flags.channels)})
    data = _given(flags)
    if flags.channels:
        data["channels"] = list(flags.channels)
    data["codes"] = codes
    data["faq"] = {}
    return _validated(data, doc, errors)


def over_version(snapshot: Mapping[str, object], flags: Flags) -> tuple[Campaign, Document]:
    """`campaign update NAME --end …`: the current version with the flagged fields replaced, everything else
    (FAQ, answers, per-locale texts, recurrence) kept. A --code or --channel replaces the whole list."""
    errors: list[InputError] = []
    codes, typed = _codes(flags, errors)
    doc = FlagsDocument(SOURCE, None, raw={"codes": typed, "channels": list(flags.channels)})
    data = {**snapshot, **_given(flags)}
    if flags.channels:
        data["channels"] = list(flags.channels)
    if flags.codes:
        data["codes"] = codes
    return _validated(data, doc, errors)


__all__ = ["FLAGS", "SOURCE", "Flags", "FlagsDocument", "from_flags", "over_version"]
