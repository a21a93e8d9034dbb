"""A channel changes a shipped playbook without copying it: `override` (retime or disable a step), `add_steps`
and `add_on_close`, exactly as the commented example in playbooks.example.yaml shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import NOW, Configure, MakeEngine, RunCli, tick


def _as_in_the_example(cfg: dict[str, Any]) -> None:
    cfg["channels"]["phone"]["override"] = {"website-banner": {"after": "15m"}, "social-post": {"disabled": True}}
    cfg["channels"]["phone"]["add_steps"] = [
        {"id": "call-provider", "after": "10m", "action": "notify", "to": "staff", "template": "outage/staff-reminder"}]
    cfg["channels"]["phone"]["add_on_close"] = [
        {"id": "thank-provider", "action": "notify", "to": "staff", "template": "outage/staff-resolved"}]


def test_the_example_override_validates(configure: Configure, cli: RunCli) -> None:
    configure(_as_in_the_example)
    proc = cli("validate", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_disabled_step_takes_the_steps_that_only_follow_it_along(configure: Configure, engine: MakeEngine) -> None:
    configure(_as_in_the_example)
    eng = engine()
    playbook = eng.loaded.channel_playbooks["phone"]
    ids = {s.id for _, s in playbook.all_steps()}
    assert "social-post" not in ids
    assert not {"social-update", "social-resolved"} & ids, "only_if: social-post can never be true"
    assert {"call-provider", "thank-provider", "staff-eta-update", "staff-resolved"} <= ids

    eng.open("phone", reason="SIP trunk down", eta=timedelta(hours=2), by="tester")
    tick(eng)
    planned = {r.step_id: r.due_at for r in eng.store.steps_for(1) if r.state == "planned"}
    assert planned["call-provider"] == NOW + timedelta(minutes=10)
    assert planned["website-banner"] == NOW + timedelta(minutes=15)
    assert "social-post" not in planned

    eng.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    eng.open("phone", reason="SIP trunk down", eta=timedelta(hours=3), by="tester")  # the ETA moves
    eng.close("phone", by="tester")
    tick(eng)
    steps = {r.step_id for r in eng.store.steps_for(1)}
    assert {"thank-provider", "staff-resolved", "staff-eta-update"} <= steps
    assert not {"social-post", "social-update", "social-resolved"} & steps
