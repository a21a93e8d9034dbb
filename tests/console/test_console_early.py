"""Registering a campaign early from the console, over HTTP as a browser without scripts sends it: Name,
Starts and Ends alone register it (the organisation's time zone, the name as title, every customer channel),
and what it still lacks is listed in the preview of the staff briefing and on the campaign's page, as
`campaign list --json` lists it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.console.kit import ConsoleSite, cli

Make = Callable[..., ConsoleSite]


def _local(days: float, hour: int) -> str:
    return (datetime.now() + timedelta(days=days)).strftime(f"%Y-%m-%dT{hour:02d}:00")


def _missing(text: str) -> str:
    found = re.search(r'<h2 id="missing">.*?</ul>', text, re.S)
    assert found, text[:3000]
    return html.unescape(found.group(0))


def test_name_starts_and_ends_are_enough_to_register_from_the_form(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("mark")
    csrf = c.get("/console/campaigns/new").csrf()
    fields = {"csrf": csrf, "name": "spring-sale", "starts": _local(6, 9), "ends": _local(8, 20)}

    shown = c.post("/console/campaigns/new", {**fields, "do": "preview"})
    assert shown.status == 200 and 'role="alert"' not in shown.text, shown.text[:3000]
    gaps = _missing(shown.text)
    for words in ("The terms", "An owner", "Discount codes", "FAQ entries (hu, en, sk, pl)", "Template answers",
                  "The FAQ page"):
        assert words in gaps, (words, gaps)
    briefing = html.unescape(shown.text)
    assert "Campaign briefing: spring-sale" in briefing and "Not given yet: ask marketing" in briefing
    assert "None" not in briefing
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []  # a preview stores nothing

    done = c.post("/console/campaigns/new", {**fields, "do": "register"})
    assert done.status == 303, done.text[:3000]
    [listed] = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert (listed["name"], listed["title"], listed["registered_by"]) == ("spring-sale", "spring-sale", "mark")
    assert listed["channels"] == ["phone", "email", "chat", "social"]
    assert listed["missing"] == ["terms", "owner", "codes", "faq", "answers", "faq_url"]
    starts = datetime.fromisoformat(listed["starts_at"]).astimezone(ZoneInfo("Europe/Budapest"))
    assert starts.strftime("%Y-%m-%dT%H:%M") == fields["starts"]  # read in the organisation's time zone

    page = c.get("/console/campaigns/spring-sale")
    assert page.status == 200
    assert "The terms" in _missing(page.text) and "None" not in html.unescape(page.text)
