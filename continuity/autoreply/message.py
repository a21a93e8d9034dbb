"""Parse one raw RFC 5322 message into what the auto-responder needs, and never raise.

Customers' mail is full of mistakes: undeclared 8-bit headers, charsets nobody knows (`x-unknown`), bodies
declared UTF-8 but written in ISO-8859-2, broken encoded words, missing From or Message-ID, multiparts without a
boundary, attachments of many megabytes. The responder must answer such mail correctly or skip it with a reason,
so `parse` returns a best-effort `Incoming` for any bytes at all and lists what was odd in `problems`.

The stdlib parser (policy.default, compat32 when that fails) splits the message; headers are decoded here from
their raw form, so one broken header cannot hide the others, and only the text parts are decoded, at most
`decode.MAX_PART_BYTES` of each: attachments are never decoded at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email import policy as email_policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy as EmailPolicy
from types import MappingProxyType

from continuity.autoreply.decode import Problems as Problems
from continuity.autoreply.decode import decode_bytes, html_to_text, payload_bytes

MAX_TEXT = 20_000  # characters of body text kept for language detection
MAX_STRUCTURED_CHARS = 1000  # longer address headers are scanned, not parsed: the stdlib parser is quadratic
MAX_MIME_HEADER_CHARS = 512  # a longer Content-* header sends the whole message to the lenient parser
MAX_PARAM_CHARS = 4096  # of a Content-Type read for its parameters
MAX_HEADER_VALUE = 8192  # characters of a header decoded for `headers` (and so the subject)
MAX_DEPTH = 16  # multipart nesting followed when looking for the text
MAX_PARTS = 500  # leaf parts looked at when looking for the text
KEY_BODY_BYTES = 4096  # body bytes in the fallback key

_ADDR_RE = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_ADDR_SPLIT_RE = re.compile(r"[\s<>()\[\],;:\"]+")
_PARAM_RE = re.compile(r';\s*([^\s=;]+)\s*=\s*("[^"]*"|[^;\s]*)')
# A Content-* header longer than MAX_MIME_HEADER_CHARS (folded lines count): a literal prefix keeps the search
# fast over megabytes of attachment.
_LONG_MIME_HEADER_RE = re.compile(rb"\ncontent-(?:[^\n]|\n[ \t]){%d}" % MAX_MIME_HEADER_CHARS, re.IGNORECASE)
# Address headers simple enough to read without the stdlib's structured parser (which costs more than the
# rest of a message): bare addr-specs and `Display Name <addr-spec>` with a plain phrase, comma-separated.
# dot-atoms only (no quotes, comments, groups, encoded words, IP literals); anything else goes to the parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_SIMPLE_ADDR_RE = re.compile(
    rf"[ \t]*(?:({_DOT_ATOM}@{_DOT_ATOM})|((?:{_ATEXT}+ )*{_ATEXT}+)?[ \t]*<({_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*")
_MSGID_RE = re.compile(r"<([^<>\s]*)>")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")  # bytes the email package could not decode
_SEPARATOR_RE = re.compile(rb"\r?\n\r?\n")
_WS_RE = re.compile(r"\s+")
# control characters, and lone surrogates that would break encoding the reply later
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BLANK_LINES_RE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_LANG_RE = re.compile(r"[a-z]{2,3}")


@dataclass(frozen=True)
class Incoming:
    """One received message, decoded as far as the rules and the language choice need."""

    key: str  # normalised Message-ID, or "sha256:<hex>" of From, Date, Subject and the first 4 KiB of body
    message_id: str | None  # "<id>" for In-Reply-To/References; None when missing
    sender: str | None  # addr-spec of From, lowercased; None when missing or unparseable
    sender_name: str  # decoded display name of From, '' if none
    return_path: str | None  # addr-spec of Return-Path, '' for the null sender <>, None when absent
    subject: str  # decoded, one line, '' if none
    to: tuple[str, ...]
    cc: tuple[str, ...]
    references: tuple[str, ...]  # "<id>" values of References
    content_language: str | None  # primary subtag ('hu' from 'hu-HU'), None if absent or unreadable
    text: str  # text/plain preferred, else text/html without tags; at most MAX_TEXT characters
    headers: Mapping[str, str] = field(hash=False)  # lowercased name -> decoded value of its first occurrence
    problems: tuple[str, ...] = ()
    # Additions beyond the agreed interface (all with defaults):
    other_recipients: tuple[str, ...] = ()  # Bcc, Resent-To, Resent-Cc, Resent-Bcc (RFC 5230 4.5 counts them)
    content_type: str = "text/plain"  # top-level media type, lowercased ("multipart/report" for a DSN)
    report_type: str = ""  # report-type parameter of a multipart/report, lowercased
    reply_to: tuple[str, ...] = ()  # addr-specs of Reply-To, lowercased (an answer may go there)


def parse(raw: bytes) -> Incoming:
    """Parse one message; any input gives an `Incoming`, odd input also gives `problems`."""
    problems = Problems()
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    elif isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
        problems.add("message given as text, not bytes")
    elif not isinstance(raw, bytes):
        problems.add(f"message given as {type(raw).__name__}, not bytes")
        raw = b""
    policies: list[EmailPolicy] = [email_policy.default, email_policy.compat32]
    if _LONG_MIME_HEADER_RE.search(raw) or _LONG_MIME_HEADER_RE.match(b"\n" + raw[:MAX_MIME_HEADER_CHARS + 16]):
        # policy.default parses Content-Type structurally while splitting the message: quadratic, and recursive
        # on nested comments, so a hostile header could stall or crash it. compat32 only splits.
        problems.add("oversized MIME header, lenient parse")
        policies = policies[1:]
    for pol in policies:
        try:
            return _parse(raw, pol, problems)
        except Exception as exc:  # a parser bug on hostile input: try the lenient policy, then give up
            problems.add(f"parser failed ({type(exc).__name__})")
    return _minimal(raw, problems)


def _parse(raw: bytes, pol: EmailPolicy, problems: Problems) -> Incoming:
    msg = BytesParser(policy=pol).parsebytes(raw)
    if not raw.strip():
        problems.add("empty message")
    raw_headers = _raw_headers(msg)
    first: dict[str, str] = {}
    for name, value in raw_headers:
        first.setdefault(name, value)
    # values are cut before decoding: decode_header is quadratic in the number of encoded words
    headers = {name: _one_line(_decode_words(value[:MAX_HEADER_VALUE], problems)) for name, value in first.items()}

    sender, sender_name = None, ""
    if "from" not in first:
        problems.add("missing From")
    else:
        for name, addr in _addresses(first["from"], problems):
            if addr is not None:
                sender, sender_name = addr, name
                break
        if sender is None:
            sender = _salvage_address(first["from"])
            problems.add("unparseable From" if sender is None else "broken From, address salvaged")

    message_id = _message_id(first.get("message-id"))
    if message_id is None:
        problems.add("missing Message-ID" if "message-id" not in first else "unparseable Message-ID")
        key = _fallback_key(raw, first)
    else:
        key = message_id[1:-1].lower()

    content_type, report_type = _content_type(msg)
    part_language: list[str | None] = []
    text = _body_text(msg, problems, part_language)
    content_language = _language_tag(first.get("content-language"), problems)
    if content_language is None and part_language:
        content_language = part_language[0]

    defects = getattr(msg, "defects", [])
    for defect in defects[:5]:
        problems.add(f"defect {type(defect).__name__}")

    return Incoming(
        key=key,
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        return_path=_return_path(first.get("return-path")),
        subject=headers.get("subject", ""),
        to=_recipients(raw_headers, ("to",), problems),
        cc=_recipients(raw_headers, ("cc",), problems),
        references=tuple(f"<{ref}>" for ref in _MSGID_RE.findall(first.get("references", "")) if ref),
        content_language=content_language,
        text=text,
        headers=MappingProxyType(headers),
        problems=tuple(problems.items),
        other_recipients=_recipients(raw_headers, ("bcc", "resent-to", "resent-cc", "resent-bcc"), problems),
        content_type=content_type,
        report_type=report_type,
        reply_to=_recipients(raw_headers, ("reply-to",), problems),
    )


def _minimal(raw: bytes, problems: Problems) -> Incoming:
    """What is left when both parsers failed: no headers, a key from the body alone."""
    return Incoming(key=_fallback_key(raw, {}), message_id=None, sender=None, sender_name="", return_path=None,
                    subject="", to=(), cc=(), references=(), content_language=None, text="",
                    headers=MappingProxyType({}), problems=tuple(problems.items))


# --- headers ---------------------------------------------------------------------------------------------------

def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    """(lowercased name, unfolded raw value) pairs in order; 8-bit bytes decoded by `_decode_bytes`."""
    out = []
    for name, value in msg.raw_items():
        text = value if isinstance(value, str) else str(value)
        text = text.replace("\r", "").replace("\n", "")
        if _has_surrogates(text):
            text = decode_bytes(text.encode("utf-8", "surrogateescape"), None, None)
        out.append((str(name).strip().lower(), text))
    return out


def _has_surrogates(text: str) -> bool:
    return _SURROGATE_RE.search(text) is not None


def _fix_surrogates(text: str) -> str:
    """Undo surrogate escapes the email package leaves for bytes it could not decode."""
    if not _has_surrogates(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), None, None)


def _one_line(text: str) -> str:
    return _WS_RE.sub(" ", _CONTROL_RE.sub("", text)).strip()


def _decode_words(value: str, problems: Problems | None) -> str:
    """Decode RFC 2047 encoded words; unknown or lying charsets fall back like bodies do."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # e.g. HeaderParseError on broken base64: keep the raw text
        if problems is not None:
            problems.add("broken encoded word")
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", "replace"))  # decode_header's own encoding of plain text
        else:
            out.append(decode_bytes(chunk, charset, problems))
    return "".join(out)


def _addresses(value: str, problems: Problems) -> list[tuple[str, str | None]]:
    """(decoded display name, lowercased addr-spec or None if not a usable address) for each address."""
    pairs: list[tuple[str, str]]
    if len(value) > MAX_STRUCTURED_CHARS:
        problems.add("long address header scanned")
        pairs = [("", addr) for addr in _scan_addresses(value)]
    elif (simple := _simple_addresses(value)) is not None:
        pairs = simple
    else:
        try:
            header = email_policy.default.header_factory("to", value)
            pairs = [(a.display_name, a.addr_spec) for a in header.addresses]
        except Exception:  # the structured parser choked: a plain scan still finds the addresses
            problems.add("unparseable address header")
            pairs = [("", addr) for addr in _scan_addresses(value)]
    out: list[tuple[str, str | None]] = []
    for name, spec in pairs:
        name = _fix_surrogates(str(name))
        if "=?" in name:  # encoded words inside a quoted display name: wrong, but common
            name = _decode_words(name, None)
        spec = _fix_surrogates(str(spec)).strip().lower()
        out.append((_one_line(name), spec if _ADDR_RE.fullmatch(spec) else None))
    return out


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """(display name, addr-spec) of a plain address list, as the structured parser reads it; None otherwise."""
    if '"' in value or "=?" in value or not value.strip():
        return None
    out: list[tuple[str, str]] = []
    for item in value.split(","):
        match = _SIMPLE_ADDR_RE.fullmatch(item)
        if match is None:
            return None
        bare, name, spec = match.groups()
        out.append(("", bare) if bare is not None else (name or "", spec))
    return out


def _scan_addresses(value: str) -> list[str]:
    """Address-like tokens in order, found by splitting (linear, unlike a regex search, on any input)."""
    return [token for token in _ADDR_SPLIT_RE.split(value) if _ADDR_RE.fullmatch(token)]


def _salvage_address(value: str) -> str | None:
    """The one address in a From the structured parser rejected (an unbalanced quote, a missing '>')."""
    found = {token.lower() for token in _scan_addresses(value)}
    return found.pop() if len(found) == 1 else None


def _recipients(raw_headers: list[tuple[str, str]], names: Iterable[str], problems: Problems) -> tuple[str, ...]:
    wanted = set(names)
    found: dict[str, None] = {}
    for name, value in raw_headers:
        if name in wanted:
            for _, addr in _addresses(value, problems):
                if addr is not None:
                    found.setdefault(addr, None)
    return tuple(found)


def _message_id(value: str | None) -> str | None:
    """The first "<id>" of a Message-ID header (brackets added if the sender forgot them)."""
    if value is None:
        return None
    match = _MSGID_RE.search(value)
    ident = match.group(1) if match else (value.split() or [""])[0].strip("<>")
    ident = _CONTROL_RE.sub("", ident).strip()
    return f"<{ident}>" if ident else None


def _return_path(value: str | None) -> str | None:
    if value is None:
        return None
    inner = value.strip()
    if "<" in inner:
        inner = inner[inner.index("<") + 1:].split(">")[0]
    inner = inner.strip().strip("<>").strip().lower()
    if inner.startswith("@") and ":" in inner:  # source route: <@relay:user@host>
        inner = inner.split(":", 1)[1]
    return inner


def _language_tag(value: str | None, problems: Problems) -> str | None:
    if value is None:
        return None
    first = value.split(",")[0].strip().lower().replace("_", "-").split("-")[0].strip()
    if _LANG_RE.fullmatch(first):
        return first
    problems.add("unreadable Content-Language")
    return None


def _fallback_key(raw: bytes, first: Mapping[str, str]) -> str:
    """A stable key for mail without a Message-ID: raw From, Date, Subject and the start of the body.

    Raw header values (not decoded ones) and LF line ends keep the key the same across decoder changes and
    whether the message came from IMAP (CRLF) or a file (LF), so a restart never answers such mail twice.
    """
    match = _SEPARATOR_RE.search(raw)
    body = raw[match.end():] if match else raw  # no blank line: hash it all, or all such mail would collide
    body = body.replace(b"\r\n", b"\n")[:KEY_BODY_BYTES]
    digest = hashlib.sha256()
    for name in ("from", "date", "subject"):
        digest.update(first.get(name, "").strip().encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    digest.update(body)
    return "sha256:" + digest.hexdigest()


# --- bodies ----------------------------------------------------------------------------------------------------

def _raw_param(part: Message, header: str) -> str:
    """The value of a part's header without parameters, lowercased, read from the raw header."""
    for name, value in part.raw_items():
        if str(name).strip().lower() == header:
            return str(value).split(";")[0].strip().strip("\"'").lower()
    return ""


def _param(part: Message, header: str, name: str) -> str:
    """One parameter of a part's header (charset, report-type), read from the raw header; '' if absent."""
    value = _header_value(part, header)
    for key, found in _PARAM_RE.findall((value or "")[:MAX_PARAM_CHARS]):
        if key.lower() == name:
            return str(found).strip().strip('"').strip()
    return ""


def _content_type(msg: Message) -> tuple[str, str]:
    ctype = _raw_param(msg, "content-type")
    if "/" not in ctype:  # missing or nonsense: RFC 2045 says text/plain
        ctype = "text/plain"
    report = _param(msg, "content-type", "report-type").lower() if ctype == "multipart/report" else ""
    return _one_line(_fix_surrogates(ctype)), _one_line(report)


def _leaf_parts(msg: Message) -> list[Message]:
    """Leaf parts in order, not descending into attached messages, within MAX_DEPTH and MAX_PARTS."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack and len(leaves) < MAX_PARTS:
        part, depth = stack.pop()
        if part.is_multipart():  # checked first: get_payload() on a leaf would decode it, attachments too
            payload = part.get_payload()
            if depth < MAX_DEPTH and isinstance(payload, list) and not _raw_param(part, "content-type").startswith(
                    "message/"):
                stack.extend((child, depth + 1) for child in reversed(payload) if isinstance(child, Message))
        else:
            leaves.append(part)
    return leaves


def _body_text(msg: Message, problems: Problems, part_language: list[str | None]) -> str:
    plain: Message | None = None
    html: Message | None = None
    for part in _leaf_parts(msg):
        if _raw_param(part, "content-disposition") == "attachment":
            continue
        ctype = _raw_param(part, "content-type") or "text/plain"
        if ctype.startswith("multipart/"):  # a multipart without a usable boundary: its body is one text
            ctype = "text/plain"
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
    chosen = plain if plain is not None else html  # not `or`: a Message without headers is falsy
    if chosen is None:
        return ""
    part_language.append(_language_tag(_header_value(chosen, "content-language"), problems))
    charset = _charset(chosen)
    data, truncated = payload_bytes(chosen, _raw_param(chosen, "content-transfer-encoding"), problems)
    text = decode_bytes(data, charset, problems, truncated)
    if chosen is html:
        text = html_to_text(text)
    text = _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES_RE.sub("\n\n", text).strip()[:MAX_TEXT]


def _header_value(part: Message, header: str) -> str | None:
    for name, value in part.raw_items():
        if str(name).strip().lower() == header:
            return _fix_surrogates(str(value))
    return None


def _charset(part: Message) -> str | None:
    return _param(part, "content-type", "charset") or None

