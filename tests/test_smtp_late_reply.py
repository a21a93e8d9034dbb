"""A mail server that takes the staff e-mail and answers the final dot after the sink's timeout (a slow content
filter, a greylisting relay): with four attempts allowed, it still gets one copy; the step is `uncertain` in
`status`, staff are told once, and `settle ID resend` sends exactly one more."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import NOW, Configure, RunCli
from tests.sinks.conftest import SmtpRecorder, free_port
from tests.test_cli_options import ok_json


@pytest.fixture
def slow_filter() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder(data_delay=2.0)
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


def test_a_late_final_reply_gets_one_copy_however_many_attempts(
        configure: Configure, cli: RunCli, slow_filter: SmtpRecorder) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["staff_mail"] = {"type": "email", "host": "127.0.0.1", "port": slow_filter.port,
                                      "security": "none", "sender": "alerts@example.test",
                                      "to": ["team@example.test"], "timeout": 0.5}
        cfg["routes"]["staff"] = ["outbox", "staff_mail"]
        cfg["retry"] = {"attempts": 4, "first_delay": "1s", "max_delay": "1s", "inline_budget": "20s"}

    configure(edit)
    out = cli("outage", "phone", "--reason", "SIP trunk down", "--json", now=NOW)
    assert out.returncode == 1, out.stdout + out.stderr  # a step in doubt is not "ok"
    for minutes in (1, 2, 3):  # cron's ticks: none of them sends the runbook again
        cli("tick", now=NOW + timedelta(minutes=minutes))

    status = ok_json(cli("status", "--json", now=NOW + timedelta(minutes=3)))
    [sit] = status["open"]
    [row] = [s for s in sit["steps"] if s["sink"] == "staff_mail" and s["step"] == "staff-runbook"]
    assert row["state"] == "uncertain"
    notes = [s for s in sit["steps"] if s["step"] == "step-uncertain"]
    assert {s["sink"] for s in notes} == {"outbox", "staff_mail"} and len(notes) == 2, "staff are told once"
    # The note through the same slow server is in doubt too; it is listed, and not told about in turn.
    [mail_note] = [s for s in notes if s["sink"] == "staff_mail"]
    assert sorted(a["id"] for a in sit["attention"]) == sorted([row["id"], mail_note["id"]])
    runbook_copies = [m for m in slow_filter.messages if b"Check whether a message went out" not in m.content
                      and b"reminder" not in m.content.lower()]
    assert len(runbook_copies) == 1, [m.content[:300] for m in slow_filter.messages]

    slow_filter.data_delay = 0  # the filter is fast again; a person checked the mailbox: it never arrived
    settled = ok_json(cli("settle", str(row["id"]), "resend", "--json", now=NOW + timedelta(minutes=4)))
    assert settled["state"] == "done"
    runbook_copies = [m for m in slow_filter.messages if b"Check whether a message went out" not in m.content
                      and b"reminder" not in m.content.lower()]
    assert len(runbook_copies) == 2
