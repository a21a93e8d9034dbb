"""The responder's fast paths give what the slow, obvious ways give: plain address headers read without the
structured parser, the language summed over the model's columns, the detection text bounded, the answer
rendered once per (situations, locale) and never reused for another set of situations, and a batch of store
writes committed without savepoints unless one of them fails."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest

from continuity.autoreply import language
from continuity.autoreply.compose import Composer
from continuity.autoreply.language import MAX_DETECT_CHARS, detect_language, detection_text, warm_up
from continuity.autoreply.message import _simple_addresses, parse
from continuity.autoreply.responder import StoreWorker
from continuity.autoreply.state import AutoreplyState, Part
from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.store.records import SituationRecord
from continuity.store.sqlite import SqliteStore
from tests.conftest import NOW

CORPUS = Path(__file__).parent / "corpus"
SERVED = ("en", "hu", "sk", "pl")


def structured(value: str) -> list[tuple[str, str]]:
    header = email_policy.default.header_factory("to", value)
    return [(a.display_name, a.addr_spec) for a in header.addresses]


@pytest.mark.parametrize("value", [
    "c1@example.test", "  Kim.Lee@Customer.EXAMPLE ", "Kim Lee <kim.lee@customer.example>", "<a@b.example>",
    "a@b.example, Bob <b@c.example>,c@d.example", "O'Brien <x@y.example>", "x+tag@y.example", "a@b",
    "\tKim <k@x.example>\t", "Ann-Marie Smith-Jones <am@x.example>",
])
def test_plain_address_headers_read_as_the_structured_parser_reads_them(value: str) -> None:
    assert _simple_addresses(value) == structured(value)


@pytest.mark.parametrize("value", [
    '"Help, Shop" <help@shop.example>', "Kim  Lee <k@x.example>", "a@b.example,", "team: a@x.example;",
    "=?utf-8?Q?=C5=81ukasz?= <l@x.example>", "a@[127.0.0.1]", "a@b.example (comment)", "John Q. Public <j@x.example>",
    "", " ", "Łukasz <l@x.example>", "a..b@x.example", "<a@b.example", "undisclosed", "q=?@x.example",
])
def test_anything_else_is_left_to_the_structured_parser(value: str) -> None:
    assert _simple_addresses(value) is None


def texts() -> list[str]:
    out = [parse(path.read_bytes()).text for path in sorted(CORPUS.glob("*.eml"))]
    return [t for t in out if t] + ["Jó napot! Mikor érkezik meg a rendelésem?", "Dobrý den, kdy dorazí zboží?",
                                    "Dzień dobry, kiedy dotrze paczka?", "Where is my parcel?", "Guten Tag!"]


@pytest.mark.parametrize("served", [SERVED, ("en", "hu", "pl"), ("en", "cs", "sk"), ("de",)])
def test_language_sums_over_the_models_columns_as_over_its_ranking(served: tuple[str, ...],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert warm_up()
    fast = [detect_language(t, served) for t in texts()]
    monkeypatch.setattr(language, "_columns", lambda identifier, codes: None)  # the ranking walk instead
    slow = [detect_language(t, served) for t in texts()]
    assert len(fast) == len(slow) > 20
    for got, want in zip(fast, slow, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-5)


_QUOTE = language._QUOTE_START_RE


def unbounded_detection_text(text: str, subject: str) -> str:
    """detection_text as it was before it stopped reading at MAX_DETECT_CHARS."""
    lines = []
    for line in text.splitlines():
        if _QUOTE.match(line.strip()):
            if line.lstrip().startswith(">"):
                continue
            break
        lines.append(line)
    own = "\n".join(lines).strip() or text
    subject = re.sub(r"^(?:\s*(?:re|fwd?|aw|wg|vá|odp|pd|tr)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return language._NOISE_RE.sub(" ", f"{subject}\n{own}"[:MAX_DETECT_CHARS])


@pytest.mark.parametrize("body", [
    "Dzień dobry, proszę o pomoc z zamówieniem.\n" * 500,
    "\n\n   \n" + "x" * 2990 + "\n" + "Jó napot!\n" * 40,
    "> quoted line\n" * 100 + "Hello, where is my order?\n" * 300,
    "short\n\n-- \nsignature\n",
    "\n".join(["a" * 100] * 29) + "\n" + "b" * 200 + "\nFrom: x\n" + "c" * 5000,
])
def test_detection_text_reads_a_bounded_prefix_and_gets_the_same(body: str) -> None:
    raw = ("From: a@b.example\nTo: help@shop.example\nSubject: Re: Order\n\n" + body).encode()
    msg = parse(raw)
    assert detection_text(msg) == unbounded_detection_text(msg.text, msg.subject)


def situation(sid: int, channel: str, reason: str, revision: int = 0) -> SituationRecord:
    return SituationRecord(id=sid, kind="outage", channel=channel, playbook=f"outage-{channel}", state="open",
                           source="cli", opened_by="tester", reason=reason, eta=NOW + timedelta(hours=2), note=None,
                           revision=revision, opened_at=NOW, closed_at=None, closed_by=None)


@pytest.fixture
def composer(config_path: Path) -> Composer:
    return Composer(load_config(config_path), ManualClock(NOW + timedelta(minutes=5)))


def counting(composer: Composer) -> list[str]:
    calls: list[str] = []
    real = composer.catalog.render

    def render(name: str, locale: str, context: dict[str, Any]) -> Any:
        calls.append(f"{name}/{locale}")
        return real(name, locale, context)

    composer.catalog.render = render  # type: ignore[method-assign]
    return calls


def test_an_answer_is_rendered_once_per_situations_and_locale(composer: Composer) -> None:
    calls = counting(composer)
    parts = [Part(situation(1, "phone", "SIP trunk down"), "outage/autoreply")]
    first = {loc: composer.encoded(parts, loc) for loc in SERVED}
    for _ in range(200):  # 200 senders, four languages
        for loc in SERVED:
            assert composer.encoded(parts, loc) == first[loc]
    assert sorted(calls) == sorted(f"outage/autoreply/{loc}" for loc in SERVED)


def test_a_new_or_changed_situation_is_never_answered_from_the_cache(composer: Composer) -> None:
    phone = Part(situation(1, "phone", "SIP trunk down"), "outage/autoreply")
    _, alone = composer.text([phone], "en")
    chat = Part(situation(2, "chat", "chat widget broken"), "outage/autoreply")
    _, both = composer.text([phone, chat], "en")  # a situation opened meanwhile
    assert both != alone
    # `continuity update` with a later ETA: a new revision, a new text
    later = replace(phone.situation, eta=NOW + timedelta(hours=7, minutes=30), revision=1)
    _, again = composer.text([Part(later, phone.template)], "en")
    assert again != alone
    _, back = composer.text([phone], "en")
    assert back == alone


def test_a_new_config_gets_a_new_answer(config_path: Path) -> None:
    """A reloaded config (another organisation name here) builds its own composer: nothing carried over."""
    parts = [Part(situation(1, "phone", "SIP trunk down"), "outage/autoreply")]
    clock = ManualClock(NOW + timedelta(minutes=5))
    _, before = Composer(load_config(config_path), clock).text(parts, "en")
    text = config_path.read_text(encoding="utf-8")
    assert "Example Webshop" in before and "Example Webshop" in text
    config_path.write_text(text.replace("Example Webshop", "Renamed Shop"), encoding="utf-8")
    _, after = Composer(load_config(config_path), clock).text(parts, "en")
    assert "Renamed Shop" in after and "Example Webshop" not in after


def test_a_failing_write_of_a_batch_fails_alone(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db.sqlite").close()  # migrated
    worker = StoreWorker(tmp_path / "db.sqlite", "box")
    state = AutoreplyState(worker.store, "box")

    def boom() -> None:
        state.note_ok("box@example.test", NOW)  # written, then undone with the failing write alone
        raise RuntimeError("this write fails")

    async def go() -> list[Any]:
        return await asyncio.gather(
            worker.write(state.note_ok, "box@example.test", NOW),
            worker.write(boom),
            worker.write(state.note_error, "box@example.test", "IMAP down", NOW + timedelta(seconds=1)),
            return_exceptions=True)

    try:
        first, second, third = asyncio.run(go())
        assert first is None and third is None
        assert isinstance(second, RuntimeError)
        cursor = worker.store.autoreply_cursor("box")
        assert cursor is not None and cursor.last_error == "IMAP down" and cursor.last_ok_at == NOW
    finally:
        worker.close()
