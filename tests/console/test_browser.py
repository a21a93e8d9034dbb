"""The console in a real browser: Debian's Chromium driven by Playwright against a real `continuity daemon`.

Sign in (a wrong password first), the dashboard, declare a phone outage from the form (after a refused ETA
and a preview), the situation's page, restore; a marketer is not offered declaring; the keyboard reaches every
field in order with a visible focus ring; at a phone's 390 px nothing scrolls sideways; axe-core (the npm
package, injected into the page) finds no serious or critical violation on any page. Screenshots land in the
test's tmp dir and in CONTINUITY_TEST_ARTIFACTS when that names a folder.

axe-core comes from AXE_CORE_JS, else the virtualenv's node_modules (`npm install --prefix .venv axe-core`,
which this module runs itself when npm is there). Skipped with the reason when Chromium, Playwright or axe-core
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browserkit import axe_script, chromium_browser
from tests.console.kit import PASSWORDS, ConsoleSite, cli

Make = Callable[..., ConsoleSite]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as launched:
        yield launched


@pytest.fixture
def axe() -> Path:
    found = axe_script()
    if found is None:
        pytest.skip("axe-core is not installed: npm install --prefix .venv axe-core (or set AXE_CORE_JS)")
    return found


class Checker:
    def __init__(self, tmp_path: Path, axe: Path) -> None:
        self.tmp_path = tmp_path
        self.axe = axe
        self.checked: list[str] = []

    def accessible(self, page: Any, name: str) -> None:
        """No serious or critical axe-core violation, nothing wider than the viewport; a screenshot kept."""
        page.add_script_tag(path=str(self.axe))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}: {json.dumps(bad, indent=1)}"
        width = page.viewport_size["width"]
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"
        shot = self.tmp_path / f"console-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        artifacts = os.environ.get("CONTINUITY_TEST_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, Path(artifacts) / shot.name)
        self.checked.append(name)


def sign_in(page: Any, name: str, password: str) -> None:
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_on_call_declares_and_restores_a_phone_outage_on_a_phone(console_site: Make, chromium: Any, axe: Path,
                                                                  tmp_path: Path) -> None:
    site = console_site()
    check = Checker(tmp_path, axe)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{site.url}/console/declare")
    assert page.url.endswith("/console/login?next=/console/declare")
    check.accessible(page, "sign-in")

    # The keyboard reaches the fields and the button in order, each with a visible focus ring.
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
        outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", order[-1]
    assert order == ["Skip to content", "username", "password", "Sign in"]

    sign_in(page, "olga", "wrong-password!")
    assert page.get_by_role("alert").text_content().strip() == "The user name or the password is wrong."
    check.accessible(page, "sign-in-wrong")
    sign_in(page, "olga", PASSWORDS["olga"])
    page.wait_for_url("**/console/declare")  # the page that was asked for

    # Every error at once, next to its field.
    page.get_by_label("Channel").select_option("phone")
    page.get_by_label("ETA").fill("next tuesday-ish")
    page.get_by_role("button", name="Declare outage").click()
    assert page.get_by_label("Reason").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("ETA").get_attribute("aria-invalid") == "true"
    assert "expected a duration" in (page.locator("#eta-error").text_content() or "")
    assert page.get_by_role("alert").count() == 1
    check.accessible(page, "declare-errors")
    assert site.status_json()["open"] == []

    page.get_by_label("Reason").fill("SIP trunk down at the provider")
    page.get_by_label("ETA").fill("2h")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("pre[lang=hu]").count() >= 1 and page.locator("pre[lang=en]").count() >= 1
    check.accessible(page, "declare-preview")
    assert site.status_json()["open"] == []
    page.get_by_role("button", name="Declare outage").click()
    page.wait_for_url("**/console/situations/*")
    check.accessible(page, "situation")
    shown = cli(site.workdir, "status")
    assert "outage of phone — OPEN — SIP trunk down at the provider" in shown.stdout, shown.stdout

    page.get_by_role("link", name="Dashboard").click()
    assert page.get_by_text("SIP trunk down at the provider").count() == 1
    check.accessible(page, "dashboard")

    page.get_by_role("link", name="#1 outage of").first.click()
    page.get_by_label("Note").fill("provider fixed the trunk")
    page.get_by_role("button", name="Restore").click()
    page.wait_for_load_state()
    assert site.status_json()["open"] == []
    check.accessible(page, "situation-closed")

    page.get_by_role("link", name="Campaigns").click()
    check.accessible(page, "campaigns")
    page.get_by_role("link", name="Maintenance").click()
    check.accessible(page, "maintenance")
    page.get_by_label("Channel").select_option("email")
    page.get_by_label("Start").fill(_local(3, 22))
    page.get_by_label("End").fill(_local(3, 23))
    page.get_by_label("Reason").fill("Mail server upgrade")
    page.get_by_label("Notice").fill("1d")
    page.get_by_role("button", name="Plan maintenance").click()
    page.get_by_role("button", name="Cancel window #1 of email").wait_for()
    check.accessible(page, "maintenance-planned")
    page.get_by_role("link", name="Auto-responder").click()
    check.accessible(page, "autoreply")
    page.get_by_role("link", name="Magyar").click()
    assert page.get_by_role("heading", level=1).text_content() == "Automatikus válasz"
    page.get_by_role("link", name="Áttekintés").click()
    check.accessible(page, "dashboard-hu")
    page.get_by_role("button", name="Kijelentkezés").click()
    page.wait_for_url("**/console/login")
    context.close()
    assert len(check.checked) == 12


def test_marketing_is_not_offered_declaring(console_site: Make, chromium: Any, axe: Path, tmp_path: Path) -> None:
    site = console_site()
    check = Checker(tmp_path, axe)
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{site.url}/console/")
    sign_in(page, "mark", PASSWORDS["mark"])
    page.wait_for_url("**/console/")
    assert page.get_by_role("link", name="Declare an outage").count() == 0
    assert page.get_by_role("button", name="Declare outage").count() == 0
    check.accessible(page, "dashboard-marketing")
    refused = page.goto(f"{site.url}/console/declare")
    assert refused is not None and refused.status == 403
    check.accessible(page, "refused")

    # A campaign: a bad date first (the end before the start), refused with the message next to the field.
    page.goto(f"{site.url}/console/")
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Register campaign").click()
    check.accessible(page, "campaign-form")
    page.get_by_label("Name", exact=True).fill("spring-sale")
    page.get_by_label("Starts").fill(_local(5, 9))
    page.get_by_label("Ends").fill(_local(4, 9))
    page.get_by_label("Terms").fill("10% off everything")
    page.get_by_label("Channels").fill("email chat")
    page.get_by_label("Discount codes").fill("SPRING10=10% off everything")
    page.get_by_label("FAQ page").fill("https://shop.example.test/faq")
    page.get_by_role("button", name="Register campaign").click()
    invalid = page.locator("[aria-invalid=true]")
    assert invalid.count() >= 1
    described = invalid.first.get_attribute("aria-describedby") or ""
    message = page.locator(f"#{described.split()[0]}")
    assert message.is_visible() and "end" in (message.text_content() or "").lower()
    assert page.get_by_role("alert").count() == 1
    check.accessible(page, "campaign-errors")
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []
    page.get_by_label("Ends").fill(_local(7, 20))
    page.get_by_role("button", name="Register campaign").click()
    page.wait_for_url("**/console/campaigns?registered=spring-sale")
    check.accessible(page, "campaigns-registered")
    listed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert [(r["name"], r["registered_by"]) for r in listed] == [("spring-sale", "mark")]
    context.close()


def _local(days: float, hour: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.now() + timedelta(days=days)).strftime(f"%Y-%m-%dT{hour:02d}:00")


def test_a_campaign_file_goes_up_and_comes_down_as_the_same_yaml(console_site: Make, chromium: Any, axe: Path,
                                                                  tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    import yaml

    from continuity.campaigns.load import parse
    from tests.campaigns.kit import write

    site = console_site()
    check = Checker(tmp_path, axe)
    start = (datetime.now(UTC) + timedelta(days=4)).replace(second=0, microsecond=0)  # the form has minutes
    good = write(tmp_path, **{"start: 2026-12-01T08:00:00+01:00": f"start: {start.isoformat()}",
                              "end: 2026-12-03T20:00:00+01:00": f"end: {(start + timedelta(days=2)).isoformat()}"})
    bad = write(tmp_path, name="bad.yaml", **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-12-01 08:00"})
    context = chromium.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{site.url}/console/campaigns")
    sign_in(page, "mark", PASSWORDS["mark"])
    page.wait_for_url("**/console/campaigns")
    page.get_by_label("Campaign file").set_input_files(str(bad))
    page.get_by_role("button", name="Upload campaign file").click()
    alert = page.get_by_role("alert")
    assert "start" in (alert.text_content() or "") and "uploaded file" in (alert.text_content() or "")
    check.accessible(page, "campaign-upload-error")
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []
    page.get_by_label("Campaign file").set_input_files(str(good))
    page.get_by_role("button", name="Upload campaign file").click()
    page.wait_for_url("**/console/campaigns?registered=*")
    listed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["registered_by"] == "mark"
    name = listed[0]["name"]
    # Edit: a later end; everything not touched (the per-locale titles, FAQ, answers) stays as uploaded.
    page.get_by_role("link", name=f"Edit {name}").click()
    check.accessible(page, "campaign-edit")
    later = (start + timedelta(days=3)).astimezone(ZoneInfo("Europe/Budapest")).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Ends").fill(later)
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url("**/console/campaigns?registered=*")
    changed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)[0]
    assert changed["version"] == 2
    assert datetime.fromisoformat(changed["ends_at"]) == start + timedelta(days=3)
    assert changed["title"] == parse(good)[0].title  # still per locale
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download YAML of {name}").click()
    down = tmp_path / "down.yaml"
    info.value.save_as(down)
    assert yaml.safe_load(down.read_text())["name"] == name
    # The same campaign as the file that went up (but for the new end), in the format the CLI reads.
    assert parse(down)[0].model_copy(update={"end": parse(good)[0].end}) == parse(good)[0]
    page.get_by_role("button", name=f"Cancel campaign {name}").click()
    page.wait_for_url("**/console/campaigns")
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []
    context.close()
