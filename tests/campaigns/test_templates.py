"""The shipped example campaign registers as it is, and every campaign template renders in every locale
from its own language file (no silent fallback to English)."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.campaigns import phases
from continuity.campaigns.load import parse
from continuity.config.models import LOCALES
from continuity.store.records import SituationRecord
from continuity.templating import TemplateCatalog
from continuity.variables import template_context
from tests.conftest import NOW, REPO, Configure, MakeEngine

EXAMPLE = REPO / "playbooks" / "campaign-example.yaml"
TEMPLATES = sorted(p.stem for p in (REPO / "templates" / "en" / "surge").glob("campaign-*.j2"))


def test_the_example_campaign_registers_as_shipped(engine: MakeEngine) -> None:
    eng = engine()
    result = phases.register(eng, EXAMPLE, by="marketing")
    assert result.warnings == []
    assert (result.run.name, result.run.state) == ("black-friday-2026", "registered")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_campaign_template_renders_in_every_locale(configure: Configure, engine: MakeEngine,
                                                         locale: str) -> None:
    path = configure(lambda cfg: cfg["organisation"].update(staff_locale=locale))
    eng = engine(path)
    campaign, _doc = parse(EXAMPLE)
    data = {"campaign": {"name": campaign.name, "run": 1, "version": 2, "starts_at": campaign.start.isoformat(),
                         "ends_at": campaign.end.isoformat(), "snapshot": campaign.model_dump(mode="json"),
                         "changes": ["codes: BF26 changed (discount: 20% → 25%)"], "outcome": "ended",
                         "timeline": [{"step": "brief", "sink": "outbox", "at": NOW.isoformat(), "late": False}],
                         "switched_off": ["launch-banner"]}}
    sit = SituationRecord(id=7, kind="surge", channel="campaign:black-friday-2026", playbook="surge-campaign",
                          state="closed", source="campaign", opened_by="marketing", reason="Black Friday",
                          eta=campaign.end, note=None, revision=0, opened_at=NOW, closed_at=campaign.end,
                          closed_by="campaign", data=data)
    catalog = TemplateCatalog(eng.loaded)
    playbook = eng.playbook_named("surge-campaign")
    assert len(TEMPLATES) == 9
    for name in TEMPLATES:
        rendered = catalog.render(f"surge/{name}", locale, template_context(eng.loaded, sit, playbook, locale, NOW))
        assert rendered.locale == locale, name
        text = "\n".join(rendered.blocks.values())
        assert "{{" not in text and "Black Friday" in text, name
        if name == "campaign-brief":
            assert "BF26" in text and "BFAPP" in text and playbook.plan_b and playbook.plan_b.split()[0] in text
        if name == "campaign-autoreply":  # the wait for email and the FAQ link; the codes stay on the FAQ page
            assert "/black-friday/" in rendered.blocks["summary"] and "/black-friday/" in rendered.body
            day = {"en": "1 day", "hu": "1 nap", "sk": "1 deň", "pl": "1 dzień"}[locale]  # wait: email: 24h
            assert day in rendered.body and day in rendered.blocks["summary"]
            assert "BF26" not in text and "BFAPP" not in text


def test_the_example_is_not_taken_for_a_playbook(configure: Configure, engine: MakeEngine) -> None:
    from continuity.config.loader import every_playbook

    eng = engine()
    names = {pb.name for _ch, pb in every_playbook(eng.loaded)}
    assert "surge-campaign" in names and not any(n.startswith("campaign-") for n in names)
    assert Path(EXAMPLE).is_file()
