"""How long a post is as X counts it (its "weighted length"), so an over-long post is caught before sending.

X's rules (twitter-text, configuration v3), and how closely this follows them:

- Text is NFC-normalised first, and each character weighs 1 or 2: code points up to U+10FF (Latin with every
  accent Hungarian, Slovak and Polish use, Greek, Cyrillic, …) and the general punctuation ranges
  U+2000–200D, U+2010–201F, U+2032–2037 weigh 1; everything else (CJK, Hangul, most symbols) weighs 2.
  The limit is 280, i.e. 280 Latin characters or 140 CJK ones. Followed exactly.
- Every URL counts 23, however long or short, because X wraps it in a t.co link. A link ends where X ends it:
  a path keeps X's path characters and must end on a letter, digit, `/`, `-`, `+`, `=`, `_`, `#` or a balanced
  `(…)`, so a trailing full stop, comma, `!`, `?`, unmatched `)`, and any CJK or emoji stuck to the link,
  count as text.
- An emoji counts 2, however many code points make it up (skin tones, ZWJ families, flags, keycaps). This
  follows the Unicode emoji ranges and joining rules rather than X's own emoji list; bare © and ® are
  counted as emoji (2), which is never less than X's count.
- A bare domain (`example.com`, `shop.example.hu/help`) is a link to X when its top-level domain is on X's
  list and it is not preceded by a letter, digit, `@` (an e-mail address is text), `#`, `$`, `.`, `-`, `_`
  or `/`. `_GTLDS` and `_CCTLDS` hold the part of X's list posts use (every generic and country domain here
  is on it); a word ending in any other top-level domain counts max(its length, 23), never less than X's
  count. As in twitter-text, a one-label country domain without a path (`example.hu`) is no link, which
  this module also counts as max(its length, 23).
- A host that is an IP address or ends in a reserved name (`.test`, `.example`, `.local`, `.internal`, …) is
  no link to X and counts its own length (at least 23). X may still take a real-looking start of such a
  host as a link (`https://status.shop` + `.example.test` is 23 + 13), which can add up to 12 to its count;
  reserved names only appear in examples and tests, never in a post customers should follow.

So the count is exact for text, links with a scheme, bare domains on the lists below and common emoji, and
otherwise errs on the long side (reserved host names aside): a post this module accepts, X accepts.
(twitter-text's Python port is not used: its last release is from 2023 and it imports the deprecated
pkg_resources at import time.)
"""

from __future__ import annotations

import re
import unicodedata

LIMIT = 280
URL_LENGTH = 23

# (first, last) code points that weigh 1; everything else weighs 2.
_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))

# twitter-text's character classes for links (validGeneralUrlPathChars and friends): Latin letters with
# accents and Cyrillic may sit in a path, CJK and emoji may not, so they end the link and count as text.
_LATIN = (
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268"
    "\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_PATH_CHAR = rf"[a-z\u0400-\u04ff0-9!*';:=+,.$/%#\[\]\-\u2013_~&|@{_LATIN}]"
_PATH = rf"/(?:{_PATH_CHAR}|\((?:{_PATH_CHAR}|\({_PATH_CHAR}*\))*\))*"
_QUERY = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*"
# The characters a path or a query may end on; anything after the last of them is sentence punctuation.
_PATH_END = re.compile(rf"[+\-a-z\u0400-\u04ff0-9=_#/){_LATIN}]", re.IGNORECASE)
_QUERY_END = re.compile(r"[a-z0-9\-_&=#/]", re.IGNORECASE)
_TAIL = rf"(?P<port>:\d{{1,5}})?(?P<path>{_PATH})?(?P<query>{_QUERY})?"
# A host ends at ASCII punctuation other than `.`, `-` and `_` (non-ASCII letters are allowed: IDN hosts).
_URL = re.compile(rf"https?://(?P<host>[^\s!-,/:-@\[-^`{{-~]+){_TAIL}", re.IGNORECASE)
# No letter, digit, @ (e-mail), # or $ (hashtag, cashtag) or -_./ before a bare domain; its top-level domain
# is not followed by a letter, digit, @, + or -.
_BARE = re.compile(
    rf"(?<![a-z0-9@\uff20$#\uff03\u202a-\u202e_./-])(?P<host>(?:[a-z0-9{_LATIN}-]+\.)+[a-z]{{2,63}})(?![0-9a-z@+-]){_TAIL}",
    re.IGNORECASE,
)

# Top-level domains on X's list (twitter-text's tld_lib), limited to ones certain to be there: every legacy
# generic one, common newer ones, and the long-delegated country codes.
_GTLD_NAMES = (
    "com net org info biz edu gov mil int name pro mobi aero asia cat coop jobs museum tel travel "
    "app blog cloud club dev live news online shop site store tech top xyz"
)
_CCTLD_NAMES = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz "
    "ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk "
    "fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir "
    "is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk "
    "ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl "
    "pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr st su sv sx sy sz tc td "
    "tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
)
_GTLDS = frozenset(_GTLD_NAMES.split())
_CCTLDS = frozenset(_CCTLD_NAMES.split())

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


def _trim(part: str, ends: re.Pattern[str]) -> str:
    """`part` up to its last character that may end it (twitter-text's ...EndingChars)."""
    while part and not ends.fullmatch(part[-1]):
        part = part[:-1]
    return part


def _link(m: re.Match[str]) -> tuple[str, bool]:
    """The link X sees in a match (trailing punctuation dropped), and whether it has a path."""
    host = m["host"]
    if host[-1] in ".-_":  # `https://example.com.` ends a sentence: the host ends before the dot
        return m.group(0)[: m.start("host") - m.start() + len(host.rstrip(".-_"))], False
    path = m["path"] or ""
    kept = _trim(path, _PATH_END)
    query = _trim(m["query"] or "", _QUERY_END) if kept == path else ""
    head = m.group(0)[: m.end("host") - m.start()] + (m["port"] or "")
    return head + kept + query, bool(kept)


def _reserved_host(host: str) -> bool:
    """An IP address or a reserved top-level domain: never a link to X (see the module docstring)."""
    host = host.lower().rstrip(".")
    tld = host.rsplit(".", 1)[-1]
    return tld.isdigit() or tld in _RESERVED_TLDS or "." not in host


def weighted_length(text: str) -> int:
    """The length X gives `text` (see the module docstring for where this errs on the long side)."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    total = 0
    pos = 0
    for m in _URL.finditer(text):
        link, _ = _link(m)
        counted = max(_text_length(link), URL_LENGTH) if _reserved_host(m["host"]) else URL_LENGTH
        total += _bare_or_text(text[pos : m.start()]) + counted
        pos = m.start() + len(link)
    return total + _bare_or_text(text[pos:])


def _bare_or_text(text: str) -> int:
    """Weighted length of text between links with a scheme: bare domains X links count 23."""
    total = 0
    pos = 0
    for m in _BARE.finditer(text):
        link, has_path = _link(m)
        host = m["host"].lower()
        tld = host.rsplit(".", 1)[-1]
        # twitter-text links a one-label country domain (`example.hu`) only with a path.
        linked = tld in _GTLDS or (tld in _CCTLDS and (has_path or host.count(".") > 1))
        counted = URL_LENGTH if linked else max(_text_length(link), URL_LENGTH)
        total += _text_length(text[pos : m.start()]) + counted
        pos = m.start() + len(link)
    return total + _text_length(text[pos:])


def too_long(text: str, limit: int = LIMIT) -> str | None:
    """None when text fits; otherwise a sentence saying by how much."""
    length = weighted_length(text)
    if length <= limit:
        return None
    return f"{length} characters as X counts them (links count {URL_LENGTH}, emoji and CJK 2); the limit is {limit}"
