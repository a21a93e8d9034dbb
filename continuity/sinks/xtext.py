"""How long a post is as X counts it (its "weighted length"), so an over-long post is caught before sending.

X's rules (twitter-text, configuration v3), and how closely this follows them:

- Text is NFC-normalised first, and each character weighs 1 or 2: code points up to U+10FF (Latin with every
  accent Hungarian, Slovak and Polish use, Greek, Cyrillic, …) and the general punctuation ranges
  U+2000–200D, U+2010–201F, U+2032–2037 weigh 1; everything else (CJK, Hangul, most symbols) weighs 2.
  The limit is 280, i.e. 280 Latin characters or 140 CJK ones. Followed exactly.
- Every URL counts 23, however long or short, because X wraps it in a t.co link. `http://` and `https://`
  links are counted exactly so; a trailing full stop, comma, `!`, `?`, `)` and the like is not part of a link.
- An emoji counts 2, however many code points make it up (skin tones, ZWJ families, flags, keycaps). This
  follows the Unicode emoji ranges and joining rules rather than X's own emoji list; bare © and ® are
  counted as emoji (2), which is never less than X's count.
- A bare domain (`shop.example.hu`, `example.com/help`) is a link to X when its top-level domain is a real
  one. X's list of top-level domains is not copied here: such a word counts max(its length, 23), which is
  X's count when it is a link and never less than X's count when it is not.
- A host that is an IP address or ends in a reserved name (`.test`, `.example`, `.local`, `.internal`, …) is
  no link to X and counts its own length (at least 23). X may still take a real-looking start of such a
  host as a link (`https://status.shop` + `.example.test` is 23 + 13), which can add up to 12 to its count;
  reserved names only appear in examples and tests, never in a post customers should follow.

So the count is exact for text, links with a scheme and common emoji, and otherwise errs on the long side
(reserved host names aside): a post this module accepts, X accepts. (twitter-text's Python port is not used:
its last release is from 2023 and it imports the deprecated pkg_resources at import time.)
"""

from __future__ import annotations

import re
import unicodedata

LIMIT = 280
URL_LENGTH = 23

# (first, last) code points that weigh 1; everything else weighs 2.
_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))

# Trailing characters that end a sentence rather than belong to the link.
_TRAIL = ".,;:!?)]}'\"»”’…"
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_BARE = re.compile(
    r"(?<![\w@/.:-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)

# Special-use names (RFC 2606, 6761, 6762) and common private ones: never a real top-level domain.
_RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost", "local", "internal", "lan", "home",
                            "corp", "intranet", "private", "arpa", "onion"})

_ZWJ = 0x200D
_VS16 = 0xFE0F
_VS15 = 0xFE0E
_KEYCAP = 0x20E3
_KEYCAP_BASES = frozenset(map(ord, "#*0123456789"))


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _is_modifier(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _is_tag(cp: int) -> bool:
    return 0xE0020 <= cp <= 0xE007F


def _is_pictographic(cp: int) -> bool:
    """Code points that start an emoji (a close superset of Unicode's Extended_Pictographic)."""
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2B00 <= cp <= 0x2BFF
        or 0x2190 <= cp <= 0x21FF
        or 0x25A0 <= cp <= 0x25FF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def char_weight(ch: str) -> int:
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in _LIGHT) else 2


def _text_length(text: str) -> int:
    """Weighted length of text without links: emoji sequences count 2, other characters by their range."""
    cps = [ord(c) for c in text]
    n = len(cps)
    total = 0
    i = 0
    while i < n:
        cp = cps[i]
        if _is_regional(cp):
            # A flag is a pair of regional indicators; a lone one is still one emoji.
            i += 2 if i + 1 < n and _is_regional(cps[i + 1]) else 1
            total += 2
            continue
        keycap = cp in _KEYCAP_BASES and (
            (i + 1 < n and cps[i + 1] == _KEYCAP) or (i + 2 < n and cps[i + 1] == _VS16 and cps[i + 2] == _KEYCAP)
        )
        if _is_pictographic(cp) or keycap:
            i += 1
            while i < n:
                nxt = cps[i]
                if nxt in (_VS16, _VS15, _KEYCAP) or _is_modifier(nxt) or _is_tag(nxt):
                    i += 1
                elif nxt == _ZWJ and i + 1 < n and (_is_pictographic(cps[i + 1]) or _is_regional(cps[i + 1])):
                    i += 2
                else:
                    break
            total += 2
            continue
        total += char_weight(text[i])
        i += 1
    return total


def _split_trailing(link: str) -> tuple[str, str]:
    """A link and the sentence punctuation stuck to its end (an unmatched `)` ends the link too)."""
    end = len(link)
    while end > 0 and link[end - 1] in _TRAIL:
        if link[end - 1] == ")" and link.count("(", 0, end) >= link.count(")", 0, end):
            break
        end -= 1
    return link[:end], link[end:]


def _reserved_host(link: str) -> bool:
    """An IP address or a reserved top-level domain: never a link to X (see the module docstring)."""
    host = re.sub(r"^[a-z]+://", "", link, flags=re.IGNORECASE).split("/", 1)[0].split("?", 1)[0]
    host = host.rsplit("@", 1)[-1].lower()
    if host.startswith("["):
        return True
    host = host.split(":", 1)[0].rstrip(".")
    tld = host.rsplit(".", 1)[-1]
    return tld.isdigit() or tld in _RESERVED_TLDS or "." not in host


def _link_length(link: str) -> int:
    return max(_text_length(link), URL_LENGTH) if _reserved_host(link) else URL_LENGTH


def weighted_length(text: str) -> int:
    """The length X gives `text` (see the module docstring for where this errs on the long side)."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    total = 0
    pos = 0
    for m in _URL.finditer(text):
        link, rest = _split_trailing(m.group(0))
        total += _bare_or_text(text[pos:m.start()]) + _link_length(link) + _text_length(rest)
        pos = m.end()
    return total + _bare_or_text(text[pos:])


def _bare_or_text(text: str) -> int:
    total = 0
    pos = 0
    for m in _BARE.finditer(text):
        link, rest = _split_trailing(m.group(0))
        if "." not in link.split("/", 1)[0]:  # the punctuation took the dot: `etc.` is not a domain
            continue
        counted = max(_text_length(link), URL_LENGTH)
        total += _text_length(text[pos:m.start()]) + counted + _text_length(rest)
        pos = m.end()
    return total + _text_length(text[pos:])


def too_long(text: str, limit: int = LIMIT) -> str | None:
    """None when text fits; otherwise a sentence saying by how much."""
    length = weighted_length(text)
    if length <= limit:
        return None
    return f"{length} characters as X counts them (links count {URL_LENGTH}, emoji and CJK 2); the limit is {limit}"
