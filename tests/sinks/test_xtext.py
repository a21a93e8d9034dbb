"""X's weighted length (twitter-text v3 rules) as one table of (text, length X gives it), and the fit check."""

from __future__ import annotations

import pytest

from continuity.sinks.xtext import LIMIT, too_long, weighted_length

LONG_PATH = "/orders/" + "a" * 100  # a link of 100+ characters still counts 23

# (id, text, weighted length as X counts it); every case here is one twitter-text decides the same way.
CASES: list[tuple[str, str, int]] = [
    ("ascii", "Our shop is back online.", 24),
    ("hungarian", "Árvíztűrő tükörfúrógép", 22),
    ("slovak", "Žltý kôň ďaleko", 15),
    ("polish", "Zażółć gęślą jaźń", 17),
    ("nfc", "Cafe\u0301", 4),  # e + combining acute is one character after NFC
    ("cjk", "日本語", 6),
    ("cjk-mixed", "OK 完了", 7),
    ("emoji", "Fixed 🎉", 8),
    ("zwj-family", "👨\u200d👩\u200d👧\u200d👦", 2),
    ("skin-tone", "👍🏽", 2),
    ("flag", "🇭🇺", 2),
    ("keycap", "1\ufe0f\u20e3", 2),
    ("https-long", "See https://www.example.com" + LONG_PATH, 4 + 23),
    ("http", "http://example.com/status", 23),
    ("url-full-stop", "Details: https://example.com/status.", 9 + 23 + 1),
    ("url-in-parens", "(https://example.com/status)", 1 + 23 + 1),
    ("url-question", "Down? https://example.com/status?", 6 + 23 + 1),
    ("bare-domain", "example.com", 23),
    ("bare-domain-sentence", "Go to example.com.", 6 + 23 + 1),
    ("bare-with-path", "Visit shop.example.hu/" + "x" * 60, 6 + 23),
    ("bare-path-only", "shop.example.hu/" + "x" * 60, 23),
    ("bare-path-full-stop", "shop.example.hu/status.", 23 + 1),
    ("eg", "e.g.", 4),
    ("version", "v1.2", 4),
    ("email", "Write to help@shop.example.hu", 9 + 20),
    ("email-dotted", "first.last@example.com", 22),
    ("exactly-280", "a" * 280, 280),
    ("cjk-280", "日" * 140, 280),
    ("url-280", "a" * 256 + " https://example.com" + LONG_PATH, 280),
    ("over-281", "a" * 281, 281),
    ("cjk-281", "日" * 140 + "a", 281),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def test_fits_up_to_the_limit() -> None:
    assert LIMIT == 280
    assert too_long("a" * 280) is None
    assert too_long("日" * 140) is None
    assert too_long("Visit shop.example.hu/" + "x" * 300 + " " + "a" * 250) is None  # 6 + 23 + 1 + 250


def test_too_long_says_by_how_much() -> None:
    problem = too_long("日" * 140 + "a")
    assert problem is not None
    assert "281" in problem and "280" in problem
    assert too_long("a" * 30, limit=29) is not None
