"""Hostile text, a config that sends every action to every kind of sink on loopback servers, and the checks
every output must pass: the text comes out as text (escaped for the document it is in), is refused at the door,
or is not there at all, and the document around it still parses.

Every hostile text starts with a marker naming the input it was typed into (`INJ-reason:`), so a test can tell
which input reached which output, and carries every payload at once, so one command exercises them all.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller

from tests.crashkit import free_port

ROOT = Path(__file__).resolve().parents[2]

# The payloads, by what they try to break.
PAYLOADS: dict[str, str] = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "jinja": "{{ 7*7 }}",
    "jinja-loop": "{% for x in range(9) %}x{% endfor %}",
    "jinja-config": "{{ config }}",
    "header": "x\r\nBcc: evil@example.test",
    "twiml": "</Say><Redirect>http://evil</Redirect>",
    "cdata": "]]>",
    "amp": "&",
    "json": '"}',
    "chat": "@channel [click](http://evil) <!everyone>",
}
# What a text that was evaluated or parsed instead of shown would contain.
EXECUTED = ("49", "xxxxxxxxx", "<Config")
# Fields have length limits (continuity/limits.py): a title 200 characters, a person's name 100.
_TITLE = ("script", "attribute", "jinja", "header", "twiml", "cdata", "amp", "json", "chat")
_TINY = ("script", "jinja", "header", "cdata", "amp", "json")
SIZES = {"long": tuple(PAYLOADS), "title": _TITLE, "tiny": _TINY}
LIMITS = {"long": 500, "title": 200, "tiny": 100}


def marker(name: str) -> str:
    return f"INJ-{name}:"


def hostile(name: str, size: str = "long", *, nul: bool = False) -> str:
    """`INJ-<name>:` and every payload that fits the field (`long`, `title`, `tiny`); `nul` adds a U+0000,
    which only JSON bodies and YAML escapes can carry (an argv cannot)."""
    text = " ".join([marker(name), *(PAYLOADS[k] for k in SIZES[size])])
    if nul:
        text += " \x00"
    assert len(text) <= LIMITS[size], (name, len(text))
    return text


def raw(text: str) -> str:
    """A FAQ entry or template answer is a jinja2 template by design; this is how its author writes text with
    template syntax in it to be shown as it is."""
    return "{% raw %}" + text + "{% endraw %}"


def norm(text: str) -> str:
    """Text compared as a reader sees it: every run of whitespace or control characters is one space (mail
    folds lines, HTML collapses them, a PBX text is one line, control characters may be dropped)."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())


def shows(text: str, payload: str) -> bool:
    """The payload is in the text exactly as typed (not evaluated, not eaten), whitespace aside."""
    return norm(payload) in norm(text)


# --- documents ----------------------------------------------------------------------------------------------

OUTBOX_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Continuity-Key",
                  "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Content-Language")
EMAIL_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Auto-Response-Suppress",
                 "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Content-Language")


def mail(raw_bytes: bytes, headers: tuple[str, ...]) -> EmailMessage:
    """The message, after checking it has exactly the headers the sink writes, each once, and a one-line
    Subject: a CR/LF in a text never becomes a header of its own."""
    msg = email.message_from_bytes(raw_bytes, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert sorted(msg.keys()) == sorted(headers), msg.keys()
    subject = str(msg["Subject"])
    assert "\n" not in subject and "\r" not in subject, subject
    assert not msg.is_multipart()
    return msg


def mail_text(msg: EmailMessage) -> str:
    return str(msg["Subject"]) + "\n" + str(msg.get_content())


def strict_json(body: bytes) -> Any:
    """A JSON document in valid UTF-8 (a lone surrogate or a cut string would fail here)."""
    return json.loads(body.decode("utf-8"))


def strings(doc: Any) -> list[str]:
    """Every string value in a JSON document, at any depth."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return []


def shown_or_absent(text: str, payload: str) -> str:
    """'shown' when the payload is in the text whole, as typed; 'absent' when its marker is not there at all.
    Anything in between (a part eaten, evaluated or parsed as markup) fails. For staff text on customer
    outputs, which the code may show (escaped) or leave out: customers are to read prepared texts."""
    if shows(text, payload):
        return "shown"
    name = payload.split(" ", 1)[0]
    assert name not in text, f"{name} is there, but not as typed"
    return "absent"


# Tags the payloads would make if a text were parsed as markup (TwiML's are case-folded by the HTML parser).
_FOREIGN_TAGS = {"img", "say", "redirect"}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.parts: list[str] = []
        self.inline_script = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script += data
        else:
            self.parts.append(data)


def inert_html(doc: str) -> str:
    """The page's text, after checking that no markup came from a text: none of the payloads' tags, no inline
    script (the page's own scripts are files), no event handler attribute, no link to a script or to `x`, and
    no NUL (an HTML parse error)."""
    reader = _Reader()
    reader.feed(doc)
    reader.close()
    assert not {tag for tag, _ in reader.elements} & _FOREIGN_TAGS, reader.elements
    assert reader.inline_script.strip() == "", reader.inline_script
    for tag, attrs in reader.elements:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src"), attrs
        for name in ("href", "src", "action"):
            value = attrs.get(name)
            if value is not None:
                assert value != "x" and not value.strip().lower().startswith(("javascript:", "data:")), value
    assert "\x00" not in doc
    return " ".join(reader.parts)


# --- loopback servers ---------------------------------------------------------------------------------------


@dataclass
class Received:
    rcpt_tos: list[str]
    content: bytes


class Mailbox:
    """An aiosmtpd handler keeping every message as the bytes that arrived, with its envelope recipients."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append(Received(list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class Web:
    """A loopback HTTP server answering every POST 200 with a JSON id, keeping every request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def on(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@contextmanager
def http_server() -> Iterator[Web]:
    web: Web

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with web.lock:
                web.requests.append(Request(self.path, dict(self.headers.items()), body))
            answer = b'{"id": "1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    web = Web(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield web
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- the config ---------------------------------------------------------------------------------------------

CHAT_ENV = "INJ_CHAT_URL"
TOKEN_ENV = "INJ_API_TOKEN"
TEAM = "team@example.test"
# The shipped customer templates never print the staff's reason (only a published one, `--public-reason`, in
# the automatic answer and on the status page). A site's own templates may print anything: this English pack
# prints the raw `reason` in the banner and in the phone announcement, so the sinks and pages that carry those
# (file_banner, /banner.json, voice_text, /voice.xml) are shown to escape it whatever the publishing rules.
# The other languages keep the shipped texts, where the reason must be absent.
CUSTOM_TEMPLATES = {
    "en/outage/banner.j2": "{% block title %}{{ channel.name }}: {{ reason }}{% endblock %}\n"
                           "{% block body %}\nWhat happened: {{ reason }}\n\nMore at {{ org.status_url }}\n"
                           "{% endblock %}\n",
    "en/public/voice.j2": "{% block body %}\nOur {{ channel.name }}: {{ reason }}\n{% endblock %}\n",
}


def write_config(workdir: Path, *, smtp_port: int, http_port: int, daemon_port: int | None = None) -> Path:
    """The shipped example with every route going to every sink that takes its actions, each on loopback, and
    the banner and social post of every outage at once instead of after 30 minutes."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
    for channel in ("phone", "email", "chat"):
        data["channels"][channel]["override"] = {"website-banner": {"after": "0s"}, "social-post": {"after": "0s"}}
    data["sinks"].update({
        "staff_mail": {"type": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                       "sender": "alerts@example.test", "to": [TEAM], "timeout": 5},
        "team_chat": {"type": "chat", "urls": ["${" + CHAT_ENV + "}"]},
        "hook": {"type": "webhook", "url": f"http://127.0.0.1:{http_port}/hook", "timeout": 5},
        "toot": {"type": "http_post", "url": f"http://127.0.0.1:{http_port}/toot", "timeout": 5,
                 "body": '{"status": {{ text }}, "title": {{ title }}, "step": {{ step }}}'},
        "pbx": {"type": "voice_text", "directory": "pbx"},
    })
    data["routes"] = {
        "staff": ["outbox", "staff_mail", "team_chat", "hook"],
        "customers": ["outbox", "hook"],  # e-mail cannot take a notice back on close: not here
        "website": ["website", "hook"],
        "social": ["outbox", "team_chat", "hook", "toot"],
        "autoreply": ["outbox"],
        "announcement": ["pbx"],
    }
    data["retry"]["inline_budget"] = "0s"  # a failing sink fails the test at once instead of being retried
    data["paths"]["templates"] = ["custom-templates"]
    for rel, text in CUSTOM_TEMPLATES.items():
        path = workdir / "custom-templates" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    data["daemon"]["token_env"] = TOKEN_ENV
    if daemon_port is not None:
        data["daemon"]["bind"] = f"127.0.0.1:{daemon_port}"
    path = workdir / "continuity.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# `outage --public-reason` shows the staff's reason to customers too, in the language it is written in: the
# one path by which typed text is meant to reach them. English here, so this test's English pack and the
# shipped one agree.
PUBLISH = ("--public-reason", "--reason-locale", "en", "--cause", "provider")


def declare(run: Any, *args: str) -> tuple[Any, bool]:
    """`outage ARGS --public-reason …`: (the CompletedProcess, True); (…, False) run without those options on a
    version that has none (the reason is then the staff's only)."""
    done = run(*args, *PUBLISH)
    if done.returncode == 2 and "No such option" in done.stderr:
        return run(*args), False
    return done, True


def sink_env(web: Web) -> dict[str, str]:
    return {CHAT_ENV: f"json://127.0.0.1:{web.port}/chat"}


# --- what landed where ----------------------------------------------------------------------------------------


def outbox_file(workdir: Path, sid: int, step: str, operation: str = "apply") -> Path:
    """The step's first outbox file (a notice sent again after an ETA change is a second one)."""
    found = sorted((workdir / "outbox").glob(f"*-s{sid}-{step}-{operation}-*"))
    assert found, (sid, step, operation)
    return found[0]


def outbox_mails(workdir: Path) -> list[Path]:
    return sorted((workdir / "outbox").glob("*.eml"))


def sent_mail(box: Mailbox, outbox_key: str) -> Received:
    """The message the email sink sent for the step whose outbox copy has this key (same step, other sink)."""
    from continuity.sinks.email import message_id

    wanted = message_id(outbox_key.rsplit("/", 1)[0] + "/staff_mail", TEAM)
    found = [m for m in box.messages if email.message_from_bytes(m.content)["Message-ID"] == wanted]
    assert len(found) == 1, (outbox_key, len(found))
    return found[0]


def hooks(web: Web, sid: int, step: str, operation: str = "apply") -> list[dict[str, Any]]:
    docs = [strict_json(r.body) for r in web.on("/hook")]
    return [d for d in docs if d["situation_id"] == sid and d["step_id"] == step and d["operation"] == operation]


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of a folder a web server or PBX reads, as text, at this moment."""
    if not directory.exists():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()) if p.is_file()}

