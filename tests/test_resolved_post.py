"""The public post when an outage is resolved says how long it lasted, in every language (the issue: post
'resolved', saying how long the outage lasted), and stays short enough for X."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeEngine, tick

LASTED = timedelta(hours=2, minutes=35)  # past the first post (after 30m, 2h for the office internet)
SAYS = {
    ("phone", "en"): "Our phone line is working again (+36 1 234 5678). The outage lasted 2 hours 35 minutes.",
    ("phone", "hu"): "Újra működik a telefonos ügyfélszolgálat (+36 1 234 5678). A leállás időtartama: 2 óra "
                     "35 perc.",
    ("phone", "sk"): "Dĺžka výpadku: 2 hodiny 35 minút.",
    ("phone", "pl"): "Czas trwania awarii: 2 godziny 35 minut.",
    ("internet", "en"): "The slowdown lasted 2 hours 35 minutes.",
    ("internet", "hu"): "A lassulás időtartama: 2 óra 35 perc.",
}


def resolved_post(workdir: Path) -> dict[str, str]:
    """The bodies of the one social-resolved post in the outbox, by locale."""
    [path] = (workdir / "outbox").glob("*-social-resolved-apply-*.json")
    post: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {m["locale"]: m["body"] for m in post["messages"]}


@pytest.mark.parametrize("channel", sorted({ch for ch, _ in SAYS}))
def test_resolved_post_says_how_long_the_outage_lasted(engine: MakeEngine, workdir: Path, channel: str) -> None:
    eng = engine()
    eng.open(channel, reason="provider fault", eta=timedelta(hours=2), by="tester")
    tick(eng)
    eng.clock.advance(LASTED)
    tick(eng)
    eng.close(channel, by="tester")
    tick(eng)

    bodies = resolved_post(workdir)
    for (ch, locale), text in SAYS.items():
        if ch == channel:
            assert text in bodies[locale], (locale, bodies[locale])
    assert all(len(body) <= 280 for body in bodies.values())  # X's limit
