"""Unplanned surges: the `surge:` config block, and the daemon's reaction in process on a manual clock, fed by a
real JSON queue endpoint and a real Dovecot mailbox: readings above the threshold open `surge-unplanned`, its
steps land on time, readings under it close the surge and switch its notices off."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.errors import InputError
from continuity.store import open_store
from tests.conftest import NOW, Configure, RunCli
from tests.probes import peerfixtures
from tests.probes.conftest import HttpPeer
from tests.probes.mailpeers import DovecotServer, MailUser, mail_message

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user

QUEUE_PATH = "/api/queues/support"


def set_queue(peer: HttpPeer, n: int) -> str:
    return peer.reply(QUEUE_PATH, body=json.dumps({"queue": {"open": n}}), content_type="application/json")


def surge_block(url: str, **extra: Any) -> dict[str, Any]:
    return {"threshold": 50, "every": "1s", "after": 2, "clear_after": 3,
            "probes": [{"type": "volume", "name": "helpdesk", "source": "http", "url": url, "pointer": "queue.open",
                        "what": "open tickets in the help-desk queue", "timeout": "2s"}], **extra}


DaemonFactory = Callable[[], Daemon]


@pytest.fixture
def make_daemon(configure: Configure, http_peer: HttpPeer) -> Iterator[DaemonFactory]:
    """Daemons on the email channel's surge watch, sharing one store and one manual clock (a restart is a
    second daemon on the same files)."""
    url = set_queue(http_peer, 3)
    loaded = load_config(configure(lambda cfg: cfg["channels"]["email"].update(surge=surge_block(url))))
    clock = ManualClock(NOW)
    stores = []

    def make() -> Daemon:
        store = open_store(loaded.store_url, loaded.base_dir)
        stores.append(store)
        return Daemon(loaded, store, clock, logging.getLogger("test-surge"))

    yield make
    for store in stores:
        store.close()


def readings(d: Daemon, n: int, channel: str = "email") -> None:
    """n surge readings a second apart, each followed by the steps that fell due (as the daemon's jobs do)."""

    async def go() -> None:
        for _ in range(n):
            await d.surge_cycle(channel)
            assert isinstance(d.clock, ManualClock)
            d.clock.advance(timedelta(seconds=1))
            await d.engine.run_due_async(inline=False)
        await d.surge.aclose()

    asyncio.run(go())


def run_due(d: Daemon) -> None:
    asyncio.run(d.engine.run_due_async(inline=False))


def surges(d: Daemon) -> list[Any]:
    return [s for s in d.store.open_situations() if s.kind == "surge"]


def banners(workdir: Path) -> list[Path]:
    """The banner files the website serves (the lock file beside them is not one)."""
    folder = workdir / "site" / "banner"
    return sorted(p for p in folder.glob("*") if p.suffix in (".json", ".html")) if folder.exists() else []


def outbox(workdir: Path, step: str) -> list[Path]:
    folder = workdir / "outbox"
    return sorted(p for p in folder.iterdir() if f"-{step}-" in p.name) if folder.exists() else []


def test_a_surge_opens_runs_its_steps_and_closes(make_daemon: DaemonFactory, http_peer: HttpPeer,
                                                  workdir: Path) -> None:
    d = make_daemon()
    readings(d, 3)
    assert surges(d) == []

    set_queue(http_peer, 412)
    readings(d, 1)
    assert surges(d) == [], "one reading above is not a surge yet"
    readings(d, 1)
    [sit] = surges(d)
    assert (sit.channel, sit.playbook, sit.source, sit.opened_by) == ("email", "surge-unplanned", "daemon", "daemon")
    assert sit.reason == "412 open tickets in the help-desk queue (threshold 50)"
    # At once: staff get the plan, customers the longer-wait notice; the banner waits 15 minutes.
    [staff] = outbox(workdir, "staff-surge")
    assert "412 open tickets in the help-desk queue (threshold 50)" in staff.read_text(encoding="utf-8")
    assert outbox(workdir, "customer-wait")
    [answer] = outbox(workdir, "email-autoreply")  # mail is answered too, and the reading stays internal
    assert "far more messages than usual" in answer.read_text(encoding="utf-8")
    assert "threshold" not in answer.read_text(encoding="utf-8")
    assert banners(workdir) == []

    assert isinstance(d.clock, ManualClock)
    d.clock.advance(timedelta(minutes=15))
    run_due(d)
    [banner] = [p for p in banners(workdir) if p.suffix == ".json"]
    assert "We are very busy right now" in banner.read_text(encoding="utf-8")

    # Still above: nothing new opens, nothing is sent twice.
    readings(d, 2)
    assert [s.id for s in surges(d)] == [sit.id]
    assert len(outbox(workdir, "staff-surge")) == 1

    set_queue(http_peer, 20)
    readings(d, 2)
    assert [s.id for s in surges(d)] == [sit.id], "two readings under do not close it (clear_after: 3)"
    readings(d, 1)
    assert surges(d) == []
    closed = d.store.get_situation(sit.id)
    assert closed is not None and closed.closed_by == "daemon"
    assert "20 open tickets in the help-desk queue (threshold 50)" in (closed.note or "")
    assert outbox(workdir, "staff-surge-over")
    assert banners(workdir) == [], "the banner is switched off"
    undone = {r.step_id for r in d.store.steps_for(sit.id) if r.phase == "undo" and r.state == "done"}
    assert undone == {"customer-wait", "email-autoreply", "website-busy"}


def test_an_unreadable_endpoint_neither_opens_nor_closes(make_daemon: DaemonFactory, http_peer: HttpPeer) -> None:
    d = make_daemon()
    set_queue(http_peer, 412)
    readings(d, 2)
    [sit] = surges(d)
    http_peer.reply(QUEUE_PATH, status=503, body="maintenance")
    readings(d, 5)
    assert [s.id for s in surges(d)] == [sit.id]
    assert d.surge.last["email"].above is None
    assert d.surge.last["email"].reason == "helpdesk: HTTP 503"


def _metric(d: Daemon, line_start: str) -> float | None:
    for line in d.metrics.render().decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_show_the_readings_the_threshold_and_the_surge(make_daemon: DaemonFactory,
                                                                http_peer: HttpPeer) -> None:
    d = make_daemon()
    labels = '{channel="email",probe="helpdesk"}'
    readings(d, 1)
    assert _metric(d, f"continuity_volume{labels}") == 3
    assert _metric(d, f"continuity_volume_threshold{labels}") == 50
    assert _metric(d, 'continuity_surging{channel="email"}') == 0
    set_queue(http_peer, 412)
    readings(d, 2)
    assert _metric(d, f"continuity_volume{labels}") == 412
    assert _metric(d, 'continuity_surging{channel="email"}') == 1
    set_queue(http_peer, 20)
    readings(d, 2)  # under the threshold, but the surge is still on until clear_after readings
    assert _metric(d, 'continuity_surging{channel="email"}') == 1
    http_peer.reply(QUEUE_PATH, status=503, body="maintenance")
    readings(d, 2)
    assert _metric(d, f"continuity_volume_unreadable_total{labels}") == 2
    assert _metric(d, f"continuity_volume{labels}") == 20, "a failed reading leaves the last good one"
    set_queue(http_peer, 20)
    readings(d, 1)
    assert _metric(d, 'continuity_surging{channel="email"}') == 0


def test_a_surge_someone_else_opened_is_left_alone(make_daemon: DaemonFactory, http_peer: HttpPeer) -> None:
    d = make_daemon()
    by_hand = d.engine.open("email", kind="surge", playbook="surge-unplanned", by="anna", source="cli",
                            reason="newsletter went out to everyone by mistake").situation
    set_queue(http_peer, 412)
    readings(d, 2)
    [sit] = surges(d)
    assert (sit.id, sit.reason) == (by_hand.id, "newsletter went out to everyone by mistake")
    set_queue(http_peer, 1)
    readings(d, 3)
    assert [s.id for s in surges(d)] == [by_hand.id], "the daemon closes only what it opened"


def test_a_restart_keeps_the_surge_and_its_countdown(make_daemon: DaemonFactory, http_peer: HttpPeer,
                                                     workdir: Path) -> None:
    first = make_daemon()
    set_queue(http_peer, 412)
    readings(first, 2)
    [sit] = surges(first)

    second = make_daemon()
    second.surge.resume()
    assert second.surge.watches["email"].state == "surging"
    readings(second, 2)  # still above: no second surge, no second staff alert
    assert [s.id for s in surges(second)] == [sit.id]
    assert len(outbox(workdir, "staff-surge")) == 1
    set_queue(http_peer, 0)
    readings(second, 3)
    assert surges(second) == []


def test_the_unseen_mail_of_a_real_mailbox_opens_and_closes_the_surge(
        configure: Configure, dovecot: DovecotServer, mail_user: MailUser, workdir: Path) -> None:
    probe = {"type": "volume", "source": "imap", "host": dovecot.host, "port": dovecot.imap_port,
             "username": mail_user.address, "password": "${SUPPORT_IMAP_PASSWORD}", "timeout": "3s"}
    path = configure(lambda cfg: cfg["channels"]["email"].update(
        surge={"threshold": 3, "after": 1, "clear_after": 2, "probes": [probe]}))
    loaded = load_config(path, environ={"SUPPORT_IMAP_PASSWORD": mail_user.password})
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        d = Daemon(loaded, store, ManualClock(NOW), logging.getLogger("test-surge"))
        for i in range(5):
            dovecot.deliver(mail_user.address, mail_message(f"Order #{i} missing", to=mail_user.address))
        readings(d, 1)
        [sit] = surges(d)
        assert sit.reason == f"5 unseen messages in {mail_user.address} (threshold 3)"
        # The daemon looked, and every message is still unread for the team.
        assert all("\\Seen" not in flags for flags, _ in
                   dovecot.messages(mail_user.address, mail_user.password).values())
        with dovecot.imap(mail_user.address, mail_user.password) as client:
            client.store("1:4", "+FLAGS", "\\Seen")
        readings(d, 2)
        assert surges(d) == []
        assert outbox(workdir, "staff-surge-over")
    finally:
        store.close()


# config -------------------------------------------------------------------------------------------------------


def test_the_block_threshold_applies_to_probes_without_their_own(configure: Configure, http_peer: HttpPeer) -> None:
    url = set_queue(http_peer, 1)
    block = surge_block(url)
    block["probes"].append({**block["probes"][0], "name": "vip", "threshold": 5})
    loaded = load_config(configure(lambda cfg: cfg["channels"]["email"].update(surge=block)))
    assert [(i.settings.name, getattr(i.settings, "threshold", None)) for i in loaded.surge_probes["email"]] == [
        ("helpdesk", 50.0), ("vip", 5.0)]
    spec = loaded.config.channels["email"].surge
    assert spec is not None
    assert (spec.after, spec.clear_after, spec.every, spec.playbook) == (2, 3, timedelta(seconds=1),
                                                                         "surge-unplanned")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s["probes"][0].update(type="http"),
     r"channels.email.surge.probes\[0\].type: a surge is read by volume probes, not 'http'"),
    (lambda s: s.pop("threshold"),
     r"channels.email.surge.probes\[0\]: threshold is missing: set it on the probe or as channels.email.surge"),
    (lambda s: s["probes"][0].update(pointer="a..b"), r"channels.email.surge.probes\[0\]: bad dotted path"),
    (lambda s: s.update(playbook="outage-email"),
     r"channels.email.surge.playbook: playbook 'outage-email' is of kind 'outage'"),
    (lambda s: s.update(playbook="no-such-playbook"), r"channels.email.surge.playbook: playbook 'no-such-playbook' "
     "not found"),
    (lambda s: s.update(clear_after=0), r"channels.email.surge.clear_after: Input should be greater than or equal"),
    (lambda s: s.update(every="500ms"), r"channels.email.surge.every"),
    (lambda s: s.update(afterr=3), r"channels.email.surge.afterr: unknown key"),
], ids=["not volume", "no threshold", "pointer", "wrong kind", "missing playbook", "clear_after", "every", "typo"])
def test_bad_surge_blocks_name_file_line_and_field(configure: Configure, http_peer: HttpPeer,
                                                   edit: Callable[[dict[str, Any]], None], message: str) -> None:
    block = surge_block(set_queue(http_peer, 1))
    edit(block)
    path = configure(lambda cfg: cfg["channels"]["email"].update(surge=block))
    with pytest.raises(InputError, match=r"continuity.yaml:\d+ " + message):
        load_config(path)


def test_a_volume_probe_is_not_a_health_check(configure: Configure, http_peer: HttpPeer) -> None:
    probe = surge_block(set_queue(http_peer, 1))["probes"][0]
    path = configure(lambda cfg: cfg["channels"]["email"].update(health={"probes": [{**probe, "threshold": 5}]}))
    with pytest.raises(InputError, match=r"continuity.yaml:\d+ channels.email.health.probes\[0\].type: a volume "
                       "probe measures load, not health: put it under channels.email.surge.probes"):
        load_config(path)


def test_check_shows_the_surge_reading(configure: Configure, http_peer: HttpPeer, cli: RunCli) -> None:
    url = set_queue(http_peer, 412)
    configure(lambda cfg: cfg["channels"]["email"].update(surge=surge_block(url)))
    out = cli("check", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    [surge] = doc["surge"]
    assert (surge["channel"], surge["above"]) == ("email", True)
    assert surge["reason"] == "412 open tickets in the help-desk queue (threshold 50)"
    assert surge["readings"][0]["value"] == 412
    table = cli("check", "email")
    assert table.returncode == 0, table.stderr
    assert "Surge watch" in table.stdout and "412 open tickets in the help-desk queue" in table.stdout
