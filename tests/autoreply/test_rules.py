"""The auto-responder's decisions on a corpus of real-looking mail, and the parser's behaviour on broken input.

The corpus table (corpus/expected.yaml) is the specification: one case per .eml file, each checking the decision,
its reason and the answer's language. The unit tests below pin each rule and the parse edge cases; the fuzz test
feeds a few hundred seeded mutations of the corpus through parse, decide and choose_language, which must never
raise and must only return text that can be encoded into a reply.
"""

from __future__ import annotations

import base64
import random
import time
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
import yaml

from continuity.autoreply.decode import Problems
from continuity.autoreply.language import CONFIDENCE, choose_language, detect_language, detection_text, warm_up
from continuity.autoreply.message import MAX_TEXT, Incoming, _parse, parse
from continuity.autoreply.rules import Decision, Policy, decide

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, Any] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
POLICY = Policy(
    mailbox=EXPECTED["policy"]["mailbox"],
    own_addresses=frozenset(EXPECTED["policy"]["own_addresses"]),
    require_addressed=EXPECTED["policy"]["require_addressed"],
)
SERVED: list[str] = EXPECTED["served"]
DEFAULT: str = EXPECTED["default"]
FILES = sorted(EXPECTED["messages"])


def mail(headers: dict[str, str] | None = None, body: str = "Hello, where is my order? It is late.\n",
         *, defaults: bool = True) -> bytes:
    """A small message to help@shop.example; `headers` add to or (value None) remove the defaults."""
    base = {"From": "Kim Lee <kim.lee@customer.example>", "To": "help@shop.example", "Subject": "Order",
            "Date": "Mon, 23 Nov 2026 09:00:00 +0000", "Message-ID": "<kim.1@customer.example>"} if defaults else {}
    base.update(headers or {})
    head = "".join(f"{name}: {value}\n" for name, value in base.items() if value is not None)
    return (head + "\n" + body).encode("utf-8")


def test_corpus_table_covers_every_file() -> None:
    on_disk = sorted(path.name for path in CORPUS.glob("*.eml"))
    assert on_disk == FILES
    assert len(FILES) >= 30


@pytest.mark.parametrize("name", FILES)
def test_corpus(name: str) -> None:
    want = EXPECTED["messages"][name]
    msg = parse((CORPUS / name).read_bytes())
    decision = decide(msg, POLICY)
    assert (decision.answer, decision.reason) == (want["answer"], want["reason"]), (decision, msg.problems)

    if "language" in want:
        assert choose_language(msg, SERVED, DEFAULT) == want["language"]
        # Asking again with a default outside `served` shows whether the header or the detector decided.
        other = choose_language(msg, SERVED, "zz")
        assert other == ("zz" if want["language_by"] == "default" else want["language"])
        if want["language_by"] == "header":
            assert msg.content_language is not None
        elif want["language_by"] == "detected":
            assert msg.content_language is None or msg.content_language not in ("en", "hu", "sk", "pl", "cs")

    for field in ("subject", "sender", "sender_name"):
        if field in want:
            assert getattr(msg, field) == want[field]
    if want.get("key") == "fallback":
        assert msg.key.startswith("sha256:") and msg.message_id is None
    elif "key" in want:
        assert msg.key == want["key"]
    if "text_contains" in want:
        assert want["text_contains"] in msg.text
    if "text_lacks" in want:
        assert want["text_lacks"] not in msg.text
    if "problems_contain" in want:
        assert want["problems_contain"] in msg.problems
    assert_well_formed(msg)


def assert_well_formed(msg: Incoming) -> None:
    """What the responder relies on: every string encodes, the subject is one line, the text is bounded."""
    assert isinstance(msg, Incoming)
    assert msg.key and (msg.key.startswith("sha256:") or msg.message_id is not None)
    assert "\n" not in msg.subject and "\r" not in msg.subject
    assert len(msg.text) <= MAX_TEXT
    strings = [msg.key, msg.subject, msg.sender_name, msg.text, *msg.to, *msg.cc, *msg.references,
               *msg.problems, *msg.headers, *msg.headers.values()]
    strings += [s for s in (msg.sender, msg.return_path, msg.message_id, msg.content_language) if s is not None]
    for text in strings:
        text.encode("utf-8")  # no lone surrogates: the reply must be encodable
    if msg.sender is not None:
        assert "@" in msg.sender and msg.sender == msg.sender.lower()


# --- parse ------------------------------------------------------------------------------------------------------

def test_message_id_is_normalised_and_kept_for_threading() -> None:
    msg = parse(mail({"Message-ID": "  <Kim.1@Customer.EXAMPLE> (comment)", "References": "<a@x> junk <b@y>"}))
    assert msg.key == "kim.1@customer.example"
    assert msg.message_id == "<Kim.1@Customer.EXAMPLE>"
    assert msg.references == ("<a@x>", "<b@y>")
    assert parse(mail({"Message-ID": "no-brackets@customer.example"})).message_id == "<no-brackets@customer.example>"


def test_fallback_key_is_stable_and_distinguishes_messages() -> None:
    raw = mail({"Message-ID": None})
    first = parse(raw)
    assert first.key.startswith("sha256:") and first.message_id is None
    assert "missing Message-ID" in first.problems
    assert parse(raw).key == first.key  # stable across calls
    assert parse(raw.replace(b"\n", b"\r\n")).key == first.key  # IMAP's CRLF or a file's LF: the same mail
    assert parse(mail({"Message-ID": None, "Subject": "Order 2"})).key != first.key
    assert parse(mail({"Message-ID": None}, body="Another question.\n")).key != first.key
    assert parse(mail({"Message-ID": "<>"})).key.startswith("sha256:")
    # headerless garbage still gets distinct keys
    assert parse(b"just some words").key != parse(b"other words").key


def test_addresses_are_decoded_and_lowercased() -> None:
    msg = parse(mail({
        "From": "=?utf-8?Q?=C5=81ukasz_W=C3=B3jcik?= <Lukasz.Wojcik@Firma.EXAMPLE>",
        "To": "\"Help, Shop\" <HELP@shop.example>, other@x.example",
        "Cc": "team: a@x.example, b@x.example;",
        "Bcc": "hidden@shop.example",
        "Return-Path": "<Bounce@Firma.example>",
        "Reply-To": "=?utf-8?Q?Dzia=C5=82?= <Orders@Firma.example>",
    }))
    assert msg.reply_to == ("orders@firma.example",)
    assert (msg.sender, msg.sender_name) == ("lukasz.wojcik@firma.example", "Łukasz Wójcik")
    assert msg.to == ("help@shop.example", "other@x.example")
    assert msg.cc == ("a@x.example", "b@x.example")
    assert msg.other_recipients == ("hidden@shop.example",)
    assert msg.return_path == "bounce@firma.example"
    assert parse(mail({"Return-Path": "<>"})).return_path == ""
    assert parse(mail({"Return-Path": None})).return_path is None


def test_missing_or_unusable_from() -> None:
    assert parse(mail({"From": None})).sender is None
    assert parse(mail({"From": "undisclosed"})).sender is None
    assert parse(mail({"From": "MAILER-DAEMON"})).sender is None
    assert parse(mail({"From": "a@b.example, c@d.example"})).sender == "a@b.example"


def test_content_language_primary_subtag() -> None:
    assert parse(mail({"Content-Language": "hu-HU, en"})).content_language == "hu"
    assert parse(mail({"Content-Language": "SK"})).content_language == "sk"
    bad = parse(mail({"Content-Language": "12; x"}))
    assert bad.content_language is None and "unreadable Content-Language" in bad.problems


def test_lenient_parser_fallback_reads_the_corpus_the_same() -> None:
    """parse falls back to the compat32 policy when policy.default trips; that path must see the same mail."""
    for name in FILES:
        raw = (CORPUS / name).read_bytes()
        assert _parse(raw, email_policy.compat32, Problems()) == parse(raw), name


def test_big_attachment_is_not_decoded() -> None:
    raw = (CORPUS / "large-attachment.eml").read_bytes()
    blob = base64.encodebytes(random.Random(7).randbytes(8 * 1024 * 1024))
    end = raw.index(b"\n------=_Part_3_1577--")
    big = (raw[:end] + b"\n------=_Part_3_1577\nContent-Type: video/mp4; name=\"unboxing.mp4\"\n"
           b"Content-Disposition: attachment; filename=\"unboxing.mp4\"\nContent-Transfer-Encoding: base64\n\n"
           + blob + raw[end:])
    assert len(big) > 10_000_000
    started = time.perf_counter()
    msg = parse(big)
    elapsed = time.perf_counter() - started
    assert msg.text == parse(raw).text and "uszkodzonej paczki" in msg.text
    assert decide(msg, POLICY).answer
    assert elapsed < 10, elapsed  # about 0.5 s: the parser splits 11 MB; nothing decodes the video


def test_huge_text_part_is_cut() -> None:
    body = "Dzień dobry, proszę o pomoc z zamówieniem. " * 200_000
    msg = parse(mail({"Content-Type": "text/plain; charset=utf-8"}, body=body))
    assert len(msg.text) == MAX_TEXT and msg.text.startswith("Dzień dobry")


def test_deep_nesting_and_odd_inputs_do_not_crash() -> None:
    depth = 300
    parts = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\n\n" for i in range(depth))
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    raw = mail({"Content-Type": "multipart/mixed; boundary=\"b0\""},
               body=parts + f"--b{depth}\nContent-Type: text/plain\n\nhello\n" + closing)
    for data in (raw, b"", b"\r\n\r\n", b"\x00" * 100, b"From: \xff\xfe\n\n\xff", b":\n:\n\n", b"=?" * 1000):
        assert_well_formed(parse(data))
    odd: Any = "From: text@x.example\n\nnot bytes"
    assert parse(odd).sender == "text@x.example"
    assert_well_formed(parse(None))  # type: ignore[arg-type]
    assert_well_formed(parse(bytearray(mail())))


@pytest.mark.parametrize("value", ["\\" * 200_000, "(" * 200_000, '"a" ' * 20_000, "=?utf-8?q?a?= " * 20_000,
                                   "\n ".join(["(" * 50] * 2000), "a" * 200_000],
                         ids=["backslashes", "parens", "quotes", "encoded-words", "folded-parens", "one-token"])
def test_hostile_headers_stay_fast(value: str) -> None:
    """The stdlib's structured header parser is quadratic (and recursive on nested comments): never feed it these."""
    warm_up()
    for header in ("From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted",
                   "Precedence", "References"):
        raw = f"{header}: {value}\nFrom: a@b.example\nTo: help@shop.example\n\nhello {value[:2000]}\n".encode()
        started = time.perf_counter()
        msg = parse(raw)
        decide(msg, POLICY)
        choose_language(msg, SERVED, DEFAULT)
        assert time.perf_counter() - started < 3, header  # about 0.05 s; the stdlib parser took minutes
        assert_well_formed(msg)


def test_fuzzed_corpus_never_raises() -> None:
    """Seeded random mutations of every corpus file: parse, decide and choose_language always return."""
    rng = random.Random(20261123)
    originals = [(CORPUS / name).read_bytes() for name in FILES]
    nasty = [b"=?x-unknown?B?", b"=?utf-8?Q?=C3", b"?=", b"\n\n", b"\r\n", b"<", b">", b"\"", b"\x00", b"\xff\xfe",
             b"\nContent-Type: multipart/mixed; boundary=", b"\nContent-Transfer-Encoding: base64\n", b"--", b";",
             b"charset=", b"\nFrom: ", b"@", b"\t", b"(", b")"]
    for _ in range(400):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data) + 1)
            op = rng.randrange(5)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op == 1:
                data[pos:pos] = rng.choice(nasty)
            elif op == 2:
                del data[pos:pos + rng.randint(1, 200)]
            elif op == 3:
                data[pos:pos] = rng.randbytes(rng.randint(1, 40))
            else:
                data = data[:pos]
        msg = parse(bytes(data))
        assert_well_formed(msg)
        assert isinstance(decide(msg, POLICY), Decision)
        assert choose_language(msg, SERVED, DEFAULT) in (*SERVED, DEFAULT)
    for _ in range(50):
        assert_well_formed(parse(rng.randbytes(rng.randint(0, 3000))))


# --- rules ------------------------------------------------------------------------------------------------------

def reason(headers: dict[str, str] | None = None, policy: Policy = POLICY, **kwargs: Any) -> str:
    return decide(parse(mail(headers, **kwargs)), policy).reason


def test_plain_customer_mail_is_answered() -> None:
    decision = decide(parse(mail()), POLICY)
    assert decision == Decision(True, "ok")


@pytest.mark.parametrize(("value", "expected"), [
    ("no", "ok"), ("No", "ok"), ("NO", "ok"), ("no; reason=manual", "ok"), ("no (sent by a person)", "ok"),
    ("auto-replied", "auto-submitted"), ("Auto-Generated", "auto-submitted"), ("auto-notified", "auto-submitted"),
    ("auto-generated; owner-email=\"x@y.example\"", "auto-submitted"), ("yes", "auto-submitted"),
    ("", "auto-submitted"), ("nope", "auto-submitted"),
])
def test_auto_submitted(value: str, expected: str) -> None:
    assert reason({"Auto-Submitted": value}) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("bulk", "precedence-bulk"), ("List", "precedence-bulk"), ("JUNK", "precedence-bulk"),
    ("bulk (newsletter)", "precedence-bulk"), ("first-class", "ok"), ("normal", "ok"), ("", "ok"),
])
def test_precedence(value: str, expected: str) -> None:
    assert reason({"Precedence": value}) == expected


@pytest.mark.parametrize("header", ["List-Id", "List-Unsubscribe", "List-Post", "List-Help", "Mailing-List"])
def test_list_headers(header: str) -> None:
    assert reason({header: "<https://lists.example/x>"}) == "mailing-list"


@pytest.mark.parametrize(("value", "expected"), [
    ("All", "auto-response-suppress"), ("AutoReply", "auto-response-suppress"), ("OOF", "auto-response-suppress"),
    ("DR, NDR, RN, NRN, OOF, AutoReply", "auto-response-suppress"), ("DR", "ok"), ("None", "ok"), ("NRN, RN", "ok"),
])
def test_x_auto_response_suppress(value: str, expected: str) -> None:
    assert reason({"X-Auto-Response-Suppress": value}) == expected


@pytest.mark.parametrize(("header", "value", "expected"), [
    ("X-Autoreply", "yes", "autoreply-header"), ("X-Autorespond", "Vacation", "autoreply-header"),
    ("X-AutoReply", "", "autoreply-header"), ("X-Autoreply", "no", "ok"),
    ("X-Spam-Flag", "YES", "spam"), ("X-Spam-Flag", "NO", "ok"),
    ("X-Loop", "help@shop.example", "x-loop"), ("X-Loop", "someone@else.example", "ok"),
    ("X-Failed-Recipients", "gone@customer.example", "report"),
])
def test_robot_headers(header: str, value: str, expected: str) -> None:
    assert reason({header: value}) == expected


@pytest.mark.parametrize(("address", "expected"), [
    ("MAILER-DAEMON@mx.example", "system-sender"), ("postmaster@isp.example", "system-sender"),
    ("noreply@shop.example.net", "system-sender"), ("No-Reply@x.example", "system-sender"),
    ("no_reply@x.example", "system-sender"), ("do-not-reply@x.example", "system-sender"),
    ("DoNotReply@x.example", "system-sender"), ("bounce@x.example", "system-sender"),
    ("bounces+abc=help=shop.example@x.example", "system-sender"), ("Bounce-123@x.example", "system-sender"),
    ("listserv@x.example", "system-sender"), ("owner-users@x.example", "system-sender"),
    ("users-request@x.example", "system-sender"), ("users-bounces@x.example", "system-sender"),
    ("noemi.kiss@x.example", "ok"), ("post.master.chef@x.example", "ok"), ("replyto@x.example", "ok"),
    ("anna.bouncer@x.example", "ok"), ("requests@x.example", "ok"), ("mailmanager@x.example", "ok"),
    ("postmaster+abuse@x.example", "system-sender"), ("noreply-billing@x.example", "system-sender"),
])
def test_system_senders(address: str, expected: str) -> None:
    assert reason({"From": address}) == expected
    if expected != "ok":  # the envelope sender and Reply-To count as much as From
        assert reason({"Return-Path": f"<{address}>"}) == expected
        assert reason({"Reply-To": address}) == expected


def test_null_sender_and_missing_sender() -> None:
    assert reason({"Return-Path": "<>"}) == "null-sender"
    assert reason({"Return-Path": "< >"}) == "null-sender"
    assert reason({"From": None}) == "no-sender"
    assert reason({"From": "<>"}) == "no-sender"


def test_own_addresses_in_any_case_and_return_path() -> None:
    assert reason({"From": "Shop <HELP@Shop.Example>"}) == "own-address"
    assert reason({"From": "obsluga@shop.example"}) == "own-address"
    assert reason({"Return-Path": "<podpora@shop.example>"}) == "own-address"
    assert reason({"Reply-To": "Shop <help@shop.example>"}) == "own-address"  # the answer would come to us
    shouting = Policy(mailbox=" HELP@SHOP.EXAMPLE ", own_addresses=frozenset({"Orders@Shop.Example"}))
    assert reason({"From": "orders@shop.example"}, shouting) == "own-address"
    assert reason({"To": "Orders@shop.example"}, shouting) == "ok"


def test_addressing() -> None:
    assert reason({"To": "someone@else.example"}) == "not-addressed"
    assert reason({"To": "someone@else.example", "Cc": "Help@Shop.example"}) == "ok"
    assert reason({"To": "podpora@shop.example"}) == "ok"  # an alias in own_addresses
    assert reason({"To": "someone@else.example", "Resent-To": "help@shop.example"}) == "ok"
    assert reason({"To": None}) == "not-addressed"
    relaxed = Policy(POLICY.mailbox, POLICY.own_addresses, require_addressed=False)
    assert reason({"To": "someone@else.example"}, relaxed) == "ok"


def test_report_content_types() -> None:
    for ctype in ("multipart/report; report-type=delivery-status; boundary=x", "message/delivery-status",
                  "multipart/report; report-type=disposition-notification; boundary=y"):
        assert reason({"Content-Type": ctype}) == "report"


def test_first_rule_wins_in_a_fixed_order() -> None:
    # a DSN: null sender, Auto-Submitted, report type and a MAILER-DAEMON From all apply; the null sender is first
    assert decide(parse((CORPUS / "dsn-bounce.eml").read_bytes()), POLICY).reason == "null-sender"
    both = {"Auto-Submitted": "auto-replied", "List-Id": "<l.example>", "To": "x@y.example"}
    decision = decide(parse(mail(both)), POLICY)
    assert (decision.reason, decision.detail) == ("auto-submitted", "auto-submitted: auto-replied")


# --- language ---------------------------------------------------------------------------------------------------

HU = "Jó napot! A rendelésem még mindig nem érkezett meg, pedig a múlt héten fizettem. Mikor kapom meg?"
CS = "Dobrý den, moje objednávka stále nedorazila, přestože jsem zaplatil minulý týden. Kdy ji dostanu?"


def test_content_language_beats_detection_when_served() -> None:
    assert choose_language(parse(mail({"Content-Language": "sk"}, body=HU)), SERVED, "en") == "sk"
    # not served: the text decides
    assert choose_language(parse(mail({"Content-Language": "de-AT"}, body=HU)), SERVED, "en") == "hu"
    assert choose_language(parse(mail({"Content-Language": "cz"}, body="Ok")), SERVED, "en") == "sk"


def test_czech_goes_to_slovak_only_when_slovak_is_served() -> None:
    msg = parse(mail(body=CS))
    assert choose_language(msg, SERVED, "en") == "sk"
    assert choose_language(msg, ["en", "hu", "pl"], "en") == "en"
    assert choose_language(msg, ["en", "cs", "sk"], "en") == "cs"  # a deployment that ships Czech keeps it


def test_short_or_foreign_text_gets_the_default() -> None:
    for body in ("Thanks", "OK", "", "12345 67890", "Guten Tag, meine Bestellung ist noch nicht angekommen."):
        assert choose_language(parse(mail({"Subject": ""}, body=body)), SERVED, "hu") == "hu"
    assert choose_language(parse(mail(body=HU)), [], "pl") == "pl"


def test_quoted_reply_and_signature_do_not_count() -> None:
    quoted = "\n".join(["> Dear customer, thank you for your order. We will ship it next week."] * 30)
    body = f"{HU}\n\n{quoted}\n"
    msg = parse(mail({"Subject": "Re: Your order confirmation"}, body=body))
    assert choose_language(msg, SERVED, "en") == "hu"
    outlook = (f"{HU}\n\nFrom: Shop <help@shop.example>\nSent: Monday\nSubject: Your order\n\n"
               + "Dear customer, your order has shipped and will arrive soon. " * 20)
    text = detection_text(parse(mail(body=outlook)))
    assert "shipped" not in text and "rendelésem" in text


def test_detect_language_reports_confidence() -> None:
    guess = detect_language(HU, SERVED)
    assert guess is not None and guess[0] == "hu" and guess[1] >= CONFIDENCE
    assert detect_language("ok", SERVED) is None
