"""The volume probe against a real Dovecot mailbox (mail delivered over LMTP) and a local JSON endpoint, and the
surge watch's hysteresis fed by real readings."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv, resolve_refs
from continuity.config.models import Surge
from continuity.probes import probe_class
from continuity.probes.base import ProbeResult
from continuity.probes.surge import TABLE, SurgeWatch, combine
from continuity.probes.volume import Reading, ReadingError, VolumeProbe, number_at, parse_pointer
from tests.probes import peerfixtures
from tests.probes.conftest import HttpPeer, MakeProbe, free_port, run_check
from tests.probes.mailpeers import DovecotServer, MailUser, mail_message

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user

MS = timedelta(milliseconds=1)


def imap_volume(make_probe: MakeProbe, server: DovecotServer, user: MailUser, **extra: Any) -> VolumeProbe:
    settings: dict[str, Any] = {"source": "imap", "host": server.host, "port": server.imap_port,
                                "username": user.address, "password": FromEnv(user.password), "threshold": 3}
    probe: VolumeProbe = make_probe(VolumeProbe, **{**settings, **extra})
    return probe


def deliver(server: DovecotServer, user: MailUser, n: int) -> None:
    for i in range(n):
        server.deliver(user.address, mail_message(f"Where is my order #{i}?", to=user.address))


def read(probe: VolumeProbe) -> Reading:
    async def go() -> Reading:
        try:
            return await probe.read()
        finally:
            await probe.aclose()

    return asyncio.run(go())


def flags(server: DovecotServer, user: MailUser) -> dict[str, set[str]]:
    """UID → flags, without \\Recent (which our own read-write SELECT here clears, not the probe)."""
    return {uid: set(f.split()) - {"\\Recent"} for uid, (f, _) in server.messages(user.address, user.password).items()}


# IMAP ---------------------------------------------------------------------------------------------------------


def test_unseen_count_crosses_the_threshold_up_and_down(dovecot: DovecotServer, mail_user: MailUser,
                                                        make_probe: MakeProbe) -> None:
    probe = imap_volume(make_probe, dovecot, mail_user, name="support-inbox")
    empty = run_check(probe)
    assert (empty.status, empty.reason, empty.probe) == (
        "up", f"0 unseen messages in {mail_user.address} (threshold 3)", "support-inbox")

    deliver(dovecot, mail_user, 3)
    at = run_check(probe)
    assert (at.status, at.reason) == ("up", f"3 unseen messages in {mail_user.address} (threshold 3)")

    deliver(dovecot, mail_user, 2)
    over = run_check(probe)
    assert (over.status, over.reason) == ("degraded", f"5 unseen messages in {mail_user.address} (threshold 3)")

    # Staff read two of them: the count drops back to the threshold.
    with dovecot.imap(mail_user.address, mail_user.password) as client:
        client.store("1:2", "+FLAGS", "\\Seen")
    back = read(probe)
    assert (back.value, back.above) == (3.0, False)


def test_reading_never_changes_flags(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    deliver(dovecot, mail_user, 3)
    with dovecot.imap(mail_user.address, mail_user.password) as client:
        client.store("2", "+FLAGS", "\\Flagged")
    before = flags(dovecot, mail_user)
    probe = imap_volume(make_probe, dovecot, mail_user)

    async def go() -> list[float]:
        values = [(await probe.read()).value for _ in range(3)]
        await probe.aclose()
        return values

    assert asyncio.run(go()) == [3.0, 3.0, 3.0]
    after = flags(dovecot, mail_user)
    assert after == before
    assert all("\\Seen" not in f for f in after.values())
    assert after["2"] == {"\\Flagged"}


def test_another_mailbox_and_its_name_in_the_reason(dovecot: DovecotServer, mail_user: MailUser,
                                                     make_probe: MakeProbe) -> None:
    with dovecot.imap(mail_user.address, mail_user.password) as client:
        client.create("Complaints")
        client.append("Complaints", "", None, mail_message("Broken lid"))
        client.append("Complaints", "(\\Seen)", None, mail_message("Read already"))
    reading = read(imap_volume(make_probe, dovecot, mail_user, mailbox="Complaints", threshold=0))
    assert (reading.value, reading.above) == (1.0, True)
    assert reading.text == f"1 unseen messages in {mail_user.address}/Complaints (threshold 0)"


def test_own_words_for_the_reading(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    deliver(dovecot, mail_user, 1)
    probe = imap_volume(make_probe, dovecot, mail_user, what="customer e-mails waiting", threshold=200)
    assert run_check(probe).reason == "1 customer e-mails waiting (threshold 200)"


def test_missing_mailbox_is_down(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    result = run_check(imap_volume(make_probe, dovecot, mail_user, mailbox="No Such Box"))
    assert result.status == "down"
    assert result.reason.startswith('cannot read mailbox "No Such Box"'), result.reason


def test_closed_port_is_down(make_probe: MakeProbe) -> None:
    probe = make_probe(VolumeProbe, source="imap", host="127.0.0.1", port=free_port(), username="support@x.test",
                       password=FromEnv("pw-secret"), threshold=5)
    result = run_check(probe)
    assert (result.status, result.reason) == ("down", "connection refused")
    with pytest.raises(ReadingError, match="connection refused"):
        read(probe)


# HTTP JSON ----------------------------------------------------------------------------------------------------

QUEUE = {"queue": {"name": "Support", "open": 412, "waiting_minutes": "37.5", "agents": [{"id": 1}, {"id": 2}],
                   "paused": False, "owner": None},
         "a/b": {"~x": 7}}


def serve(peer: HttpPeer, doc: Any = QUEUE, **reply: Any) -> str:
    body = doc if isinstance(doc, str) else json.dumps(doc)
    return peer.reply("/api/queue", body=body, content_type="application/json", **reply)


# (id, pointer, threshold, expected status, expected reason)
HTTP_CASES: list[tuple[str, str, float, str, str]] = [
    ("pointer above", "/queue/open", 200, "degraded", "412 at 127.0.0.1 /queue/open (threshold 200)"),
    ("dotted under", "queue.open", 500, "up", "412 at 127.0.0.1 queue.open (threshold 500)"),
    ("equal is under", "queue.open", 412, "up", "412 at 127.0.0.1 queue.open (threshold 412)"),
    ("numeric string", "queue.waiting_minutes", 30, "degraded", "37.5 at 127.0.0.1 queue.waiting_minutes "
     "(threshold 30)"),
    ("list counts", "/queue/agents", 1, "degraded", "2 at 127.0.0.1 /queue/agents (threshold 1)"),
    ("list index", "queue.agents.1.id", 5, "up", "2 at 127.0.0.1 queue.agents.1.id (threshold 5)"),
    ("escaped pointer", "/a~1b/~0x", 5, "degraded", "7 at 127.0.0.1 /a~1b/~0x (threshold 5)"),
    ("missing key", "/queue/closed", 5, "down", "no /queue/closed in the JSON"),
    ("index out of range", "queue.agents.5", 5, "down", "no /queue/agents/5 in the JSON (a list of 2)"),
    ("through a number", "queue.open.x", 5, "down", "no /queue/open/x in the JSON (/queue/open is not an object)"),
    ("boolean", "queue.paused", 5, "down", "/queue/paused is false, not a number"),
    ("null", "queue.owner", 5, "down", "/queue/owner is null, not a number"),
    ("text", "queue.name", 5, "down", '/queue/name is "Support", not a number'),
    ("object", "queue", 5, "down", "/queue is an object (name, open, waiting_minutes, agents, paused, owner), "
     "not a number"),
]


@pytest.mark.parametrize(("pointer", "threshold", "status", "reason"), [c[1:] for c in HTTP_CASES],
                         ids=[c[0] for c in HTTP_CASES])
def test_json_readings(http_peer: HttpPeer, make_probe: MakeProbe, pointer: str, threshold: float, status: str,
                       reason: str) -> None:
    probe = make_probe(VolumeProbe, source="http", url=serve(http_peer), pointer=pointer, threshold=threshold)
    result = run_check(probe)
    assert (result.status, result.reason) == (status, reason)
    assert http_peer.requests[-1].headers["Accept"] == "application/json"


@pytest.mark.parametrize(("reply", "reason"), [
    ({"status": 500, "body": "oops"}, "HTTP 500"),
    ({"body": '{"queue": {"open": 4'}, "the endpoint answered with bad JSON"),
    ({"body": "<html>login</html>", "content_type": "text/html"}, "the endpoint answered with bad JSON"),
    ({"hang": True}, "timed out after 0.3s"),
], ids=["500", "truncated", "html", "hang"])
def test_a_broken_endpoint_is_down(http_peer: HttpPeer, make_probe: MakeProbe, reply: dict[str, Any],
                                   reason: str) -> None:
    url = http_peer.reply("/api/queue", **{"content_type": "application/json", **reply})
    result = run_check(make_probe(VolumeProbe, source="http", url=url, pointer="queue.open", threshold=5,
                                  timeout=300 * MS))
    assert (result.status, result.reason) == ("down", reason)
    assert result.latency < 1


def test_refused_endpoint(make_probe: MakeProbe) -> None:
    result = run_check(make_probe(VolumeProbe, source="http", url=f"http://127.0.0.1:{free_port()}/q",
                                  pointer="/n", threshold=1))
    assert (result.status, result.reason) == ("down", "connection refused")


def test_whole_document_is_the_number(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    url = serve(http_peer, "17")
    result = run_check(make_probe(VolumeProbe, source="http", url=url, pointer="/", threshold=20, what="tickets"))
    assert (result.status, result.reason) == ("up", "17 tickets (threshold 20)")


def test_bearer_token_is_sent_and_never_shown(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    token = resolve_refs("${HELPDESK_TOKEN}", {"HELPDESK_TOKEN": "hd-4f1a-secret"})
    probe = make_probe(VolumeProbe, source="http", url=serve(http_peer), pointer="queue.open", threshold=1,
                       bearer_token=token, headers={"X-Queue": "support"})
    result = run_check(probe)
    assert result.status == "degraded"
    seen = http_peer.requests[-1].headers
    assert (seen["Authorization"], seen["X-Queue"]) == ("Bearer hd-4f1a-secret", "support")
    for shown in (repr(probe.settings), str(result.as_dict()), probe.settings.model_dump_json(), result.reason):
        assert "hd-4f1a" not in shown


# settings and helpers -----------------------------------------------------------------------------------------

IMAP = {"source": "imap", "host": "mail.example.test", "username": "support@example.test",
        "password": FromEnv("pw"), "threshold": 10}
HTTP = {"source": "http", "url": "https://helpdesk.example.test/api/queue", "pointer": "queue.open", "threshold": 10}


@pytest.mark.parametrize(("settings", "message"), [
    ({**IMAP, "host": None}, "a volume probe with source imap needs host"),
    ({k: v for k, v in IMAP.items() if k != "password"}, "needs password"),
    ({**IMAP, "url": "https://x.test/"}, "url do(es) not apply to source imap"),
    ({**HTTP, "pointer": None}, "a volume probe with source http needs pointer"),
    ({**HTTP, "username": "x"}, "username do(es) not apply to source http"),
    ({**HTTP, "pointer": "queue..open"}, "bad dotted path 'queue..open'"),
    ({**HTTP, "pointer": ""}, "pointer is empty"),
    ({**HTTP, "url": "helpdesk/api"}, "http:// or https://"),
    ({**HTTP, "threshold": -1}, "greater than or equal to 0"),
    ({**HTTP, "threshold": "lots"}, "threshold"),
    ({**HTTP, "source": "pop3"}, "source"),
    ({**HTTP, "bearer_token": "literal"}, "secrets must not be written in the YAML"),
    ({**IMAP, "password": "literal"}, "secrets must not be written in the YAML"),
    ({**HTTP, "headers": {"authorization": FromEnv("x")}, "bearer_token": FromEnv("t")}, "either bearer_token or"),
    ({**HTTP, "treshold": 5}, "Extra inputs are not permitted"),
], ids=["no host", "no password", "url on imap", "no pointer", "username on http", "dotted", "empty pointer",
        "url", "negative", "not a number", "source", "literal token", "literal password", "auth twice", "typo"])
def test_settings_errors(settings: dict[str, Any], message: str) -> None:
    data = {"type": "volume", **{k: v for k, v in settings.items() if v is not None}}
    with pytest.raises(ValidationError, match=re.escape(message)):
        probe_class("volume").Settings.model_validate(data)


@pytest.mark.parametrize(("text", "keys"), [
    ("/", []), ("/a", ["a"]), ("/a/0/b", ["a", "0", "b"]), ("/a~1b/~0c", ["a/b", "~c"]), ("/a/", ["a", ""]),
    ("a.0.b", ["a", "0", "b"]), ("open", ["open"]),
])
def test_parse_pointer(text: str, keys: list[str]) -> None:
    assert parse_pointer(text) == keys


def test_number_at_a_top_level_list() -> None:
    assert number_at([{"id": 1}, {"id": 2}, {"id": 3}], []) == 3.0
    with pytest.raises(ReadingError, match="not a number"):
        number_at("NaN", [])


# the surge watch ------------------------------------------------------------------------------------------------


def watch(after: int = 2, clear_after: int = 3) -> SurgeWatch:
    return SurgeWatch(Surge.model_validate({"probes": [{"type": "volume"}], "after": after,
                                            "clear_after": clear_after}))


def feed(w: SurgeWatch, seq: str) -> list[tuple[str, list[str]]]:
    """a = above, u = under, ? = unreadable."""
    out = []
    for c in seq:
        events = w.observe({"a": True, "u": False, "?": None}[c])
        out.append((w.state, list(events)))
    return out


def test_every_state_and_observation_has_a_move() -> None:
    states = {s for s, _ in TABLE} | set(TABLE.values())
    assert {(s, a) for s in states for a in (True, False)} == set(TABLE)


@pytest.mark.parametrize(("seq", "after", "clear_after", "states", "events_at"), [
    ("aa", 2, 3, ["rising", "surging"], {1: ["surge_started"]}),
    ("auaa", 2, 3, ["rising", "normal", "rising", "surging"], {3: ["surge_started"]}),
    ("a", 1, 1, ["surging"], {0: ["surge_started"]}),
    ("aauuu", 2, 3, ["rising", "surging", "easing", "easing", "normal"], {1: ["surge_started"], 4: ["surge_over"]}),
    ("aauuauuu", 2, 3, ["rising", "surging", "easing", "easing", "surging", "easing", "easing", "normal"],
     {1: ["surge_started"], 7: ["surge_over"]}),
    # an unreadable mailbox neither confirms nor clears a surge
    ("a?a", 2, 3, ["rising", "rising", "surging"], {2: ["surge_started"]}),
    ("aau?u?u", 2, 3, ["rising", "surging", "easing", "easing", "easing", "easing", "normal"],
     {1: ["surge_started"], 6: ["surge_over"]}),
])
def test_hysteresis(seq: str, after: int, clear_after: int, states: list[str], events_at: dict[int, list[str]]) -> None:
    got = feed(watch(after, clear_after), seq)
    assert [s for s, _ in got] == states
    assert {i: ev for i, (_, ev) in enumerate(got) if ev} == events_at


def test_real_readings_drive_the_watch(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    """Mail arrives (above twice: the surge starts), staff read it (under three times: it is over)."""
    probe = imap_volume(make_probe, dovecot, mail_user, threshold=2)
    w = watch(after=2, clear_after=3)
    events: list[str] = []
    deliver(dovecot, mail_user, 4)
    for _ in range(2):
        events += w.observe(read(probe).above)
    assert (w.state, events) == ("surging", ["surge_started"])
    with dovecot.imap(mail_user.address, mail_user.password) as client:
        client.store("1:*", "+FLAGS", "\\Seen")
    for _ in range(3):
        events += w.observe(read(probe).above)
    assert (w.state, events) == ("normal", ["surge_started", "surge_over"])


def r(value: float, threshold: float = 10) -> Reading:
    return Reading("p", value, threshold, "", 0.0)


@pytest.mark.parametrize(("readings", "failed", "how", "expected"), [
    ([r(11), r(1)], 0, "any", True),
    ([r(1), r(2)], 0, "any", False),
    ([r(1)], 1, "any", None),     # the unreadable one may be the one surging
    ([r(11)], 1, "any", True),
    ([], 2, "any", None),
    ([r(11), r(1)], 0, "all", False),
    ([r(11), r(12)], 0, "all", True),
    ([r(11)], 1, "all", None),
    ([r(1)], 1, "all", False),
])
def test_combine(readings: list[Reading], failed: int, how: str, expected: bool | None) -> None:
    assert combine(readings, failed, how) is expected


def test_check_result_shape(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    result: ProbeResult = run_check(imap_volume(make_probe, dovecot, mail_user))
    assert result.as_dict()["reason"].startswith("0 unseen messages in ")
