"""Turn the bytes of one text part into text: transfer decoding, the charset, HTML without its tags.

Split from `message` so that parsing the message's structure and decoding what a customer wrote can be read (and
limited) apart. Nothing here raises for bad input: what was odd goes into `Problems`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.message import Message
from html.parser import HTMLParser

MAX_PART_BYTES = 256 * 1024  # encoded characters of one text part that are decoded
MAX_PROBLEMS = 20

_C1_BYTES_RE = re.compile(rb"[\x80-\x9f]")
_NOT_BASE64_RE = re.compile(r"[^A-Za-z0-9+/]")
_WS_RE = re.compile(r"\s+")


class Problems:
    """Collects what was odd about a message, once each and at most MAX_PROBLEMS."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.items and len(self.items) < MAX_PROBLEMS:
            self.items.append(text)


def decode_bytes(data: bytes, declared: str | None, problems: Problems | None, truncated: bool = False) -> str:
    """Decode with the declared charset if it exists and fits, else UTF-8, else a Central European guess.

    Bytes 0x80-0x9F are control characters in ISO-8859-2 but letters in windows-1250, so their presence picks
    windows-1250; otherwise ISO-8859-2, which also reads the accented letters of Latin-1 text correctly.
    `truncated` data was cut by us and may end inside a character, which is not a reason to doubt the charset.
    """
    if declared:
        name = declared.strip().strip("\"'").lower().split("*")[0]
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            if problems is not None:
                problems.add(f"unknown charset {name[:40]}")
        else:
            try:
                return _strict(data, codec, truncated)
            except Exception:  # UnicodeDecodeError, or a bytes-to-bytes codec such as "zlib"
                if problems is not None:
                    problems.add(f"undecodable charset {name[:40]}")
    try:
        return _strict(data, "utf-8", truncated)
    except UnicodeDecodeError:
        pass
    if _C1_BYTES_RE.search(data):
        return data.decode("cp1250", "replace")
    return data.decode("iso-8859-2")


def _strict(data: bytes, codec: str, truncated: bool) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 8:  # a character cut in half at our limit
            return data[: exc.start].decode(codec)
        raise


def payload_bytes(part: Message, encoding: str, problems: Problems) -> tuple[bytes, bool]:
    """The start of a leaf part's content and whether it was cut: only MAX_PART_BYTES are transfer-decoded."""
    if encoding not in ("base64", "quoted-printable"):
        # 7bit/8bit/binary: decode=True hands back the raw bytes (decode=False would apply the declared
        # charset with errors replaced, before we could choose a better one)
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return b"", False
        return data[:MAX_PART_BYTES], len(data) > MAX_PART_BYTES
    payload = part.get_payload()
    if not isinstance(payload, str):
        return b"", False
    chunk, truncated = payload[:MAX_PART_BYTES], len(payload) > MAX_PART_BYTES
    if encoding == "base64":
        compact = _NOT_BASE64_RE.sub("", chunk)
        try:
            return base64.b64decode(compact[: len(compact) // 4 * 4]), truncated
        except (binascii.Error, ValueError):
            problems.add("broken base64")
            return b"", False
    try:
        return binascii.a2b_qp(chunk.encode("utf-8", "surrogateescape")), truncated
    except (binascii.Error, ValueError):
        problems.add("broken quoted-printable")
        return b"", False


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML body: no script or style, line breaks at block elements."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"})
    HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser gives up on some broken markup: keep what it had
        pass
    lines = (_WS_RE.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return "\n".join(lines)
