"""Campaign files for the tests: a small valid campaign as text (so broken variants keep exact line numbers),
and readers for what landed in the outbox and on the website banner."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

BANNER = Path("site/banner/continuity-banner.json")

# Starts Tuesday 1 December 2026 08:00 in Budapest (07:00 UTC), about eight days after the suite's NOW.
WINTER = """\
name: winter-sale
title: Winter Sale
start: 2026-12-01T08:00:00+01:00
end: 2026-12-03T20:00:00+01:00
terms: 15% off every coat.
faq_url: https://shop.example.test/winter/faq
codes:
  - code: WINTER15
    discount: 15%
    min_order: 20 000 Ft
channels: [email, chat]
load: 2x
wait:
  email: 12h
faq:
  en:
    - q: Which coats are included?
      a: Every coat, until {{ campaign.end }}.
  hu:
    - q: Mely kabátokra érvényes a kupon?
      a: Minden kabátra, {{ campaign.end }}-ig.
  sk:
    - q: Na ktoré kabáty platí zľava?
      a: Na všetky kabáty do {{ campaign.end }}.
  pl:
    - q: Które płaszcze są objęte promocją?
      a: Wszystkie, do {{ campaign.end }}. Odbiór osobisty w Łodzi też.
answers:
  thanks:
    vars: [customer_name]
    text:
      en: Thank you, {{ customer_name }}! Your code is {{ campaign.codes[0].code }}.
      hu: Köszönjük, {{ customer_name }}! A kódja {{ campaign.codes[0].code }}.
      sk: Ďakujeme, {{ customer_name }}! Váš kód je {{ campaign.codes[0].code }}.
      pl: Dziękujemy, {{ customer_name }}! Twój kod to {{ campaign.codes[0].code }}.
"""


def write(directory: Path, text: str = WINTER, name: str = "winter.yaml", **replace: str) -> Path:
    """Write a campaign file; `replace` maps an exact existing line to its new text (or '' to drop it)."""
    for old, new in replace.items():
        old_line = old.replace("__", " ")
        assert old_line in text, old_line
        text = text.replace(old_line, new)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def sent(workdir: Path) -> Counter[tuple[str, str]]:
    """(step, apply|undo) → how many outbox files, across all situations."""
    out: Counter[tuple[str, str]] = Counter()
    outbox = workdir / "outbox"
    if not outbox.exists():
        return out
    for p in outbox.iterdir():
        m = re.match(r"^\d{8}T\d{6}Z-s\d+-(?P<step>.+)-(?P<op>apply|undo)-[0-9a-f]{8}\.(eml|json)$", p.name)
        assert m, p.name
        out[(m["step"], m["op"])] += 1
    return out


def outbox_text(workdir: Path, step: str) -> str:
    """Every outbox file of a step, concatenated (decoded mail bodies included)."""
    import email
    import email.policy
    from email.message import EmailMessage

    texts = []
    for p in sorted((workdir / "outbox").glob(f"*-{step}-apply-*")):
        if p.suffix == ".eml":
            msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            texts.append(str(msg["Subject"]) + "\n" + msg.get_content())
        else:
            texts.append(json.dumps(json.loads(p.read_text(encoding="utf-8")), ensure_ascii=False))
    return "\n".join(texts)


def banner(workdir: Path) -> dict[str, object] | None:
    path = workdir / BANNER
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc
