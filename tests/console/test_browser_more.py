"""The console's later pages in Debian's Chromium (one browser for the module) against a real daemon whose
phone line is watched from two vantages: the dashboard per vantage and Declare with its cause and preview in
Slovak on a 390 px phone; a marketer filling the campaign form's FAQ and answer rows (Add row without a
script, every error at its field at once), its preview, the campaign's page in Polish. axe-core on every
page, nothing wider than the screen, screenshots kept (tests/console/test_browser.py's Checker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browserkit import axe_script, chromium_browser
from tests.console.kit import PASSWORDS, ConsoleSite, cli
from tests.console.test_browser import Checker, _local, sign_in
from tests.console.test_console_more import _with_vantages
from tests.crashkit import wait_for


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as launched:
        yield launched


@pytest.fixture
def axe_js() -> Path:
    found = axe_script()
    if found is None:
        pytest.skip("axe-core is not installed: npm install --prefix .venv axe-core (or set AXE_CORE_JS)")
    return found


@pytest.fixture
def watched_site(tmp_path: Path) -> Iterator[ConsoleSite]:
    site = ConsoleSite(tmp_path)
    _with_vantages(site)
    site.daemon.start()
    yield site
    site.daemon.stop()


def test_on_call_in_slovak_sees_vantages_and_declares_with_a_cause(watched_site: ConsoleSite, browser: Any,
                                                                    axe_js: Path, tmp_path: Path) -> None:
    site = watched_site
    check = Checker(tmp_path, axe_js)
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{site.url}/console/")
    sign_in(page, "olga", PASSWORDS["olga"])
    page.wait_for_url("**/console/")
    page.get_by_role("link", name="Slovenčina").click()
    assert page.get_by_role("heading", level=1).text_content() == "Prehľad"

    def outages() -> list[dict[str, Any]]:
        # The office vantage never reports, so on a slow machine a "monitoring degraded" situation may open
        # meanwhile: that one is the daemon's, not the declared outage.
        return [s for s in site.status_json()["open"] if s["kind"] == "outage"]  # type: ignore[attr-defined]

    def central_up() -> bool:
        page.reload()
        return page.get_by_text("central:").count() == 1 and page.locator(".state-up").count() >= 1

    wait_for(central_up, 15, "the central vantage's reading on the dashboard")
    assert page.get_by_text("office:").count() == 1
    check.accessible(page, "sk-dashboard-vantages")

    page.get_by_role("link", name="Nahlásiť výpadok").first.click()
    page.get_by_label("Kanál").select_option("phone")
    page.get_by_label("Dôvod").fill("UPS v serverovni zlyhala")
    page.get_by_label("Príčina pre zákazníkov").select_option("power")
    page.get_by_role("button", name="Náhľad").click()
    causes = page.locator("#preview-cause + ul")
    assert "V našej kancelárii je výpadok elektriny." in (causes.text_content() or "")
    assert page.locator("pre[lang=sk]").count() >= 1
    check.accessible(page, "sk-declare-preview")
    assert outages() == []
    page.get_by_role("button", name="Nahlásiť výpadok").click()
    page.wait_for_url("**/console/situations/*")
    check.accessible(page, "sk-situation")
    assert [(s["channel"], s["opened_by"]) for s in outages()] == [("phone", "olga")]
    context.close()


def test_marketing_fills_faq_and_answer_rows_and_previews(watched_site: ConsoleSite, browser: Any, axe_js: Path,
                                                          tmp_path: Path) -> None:
    site = watched_site
    check = Checker(tmp_path, axe_js)
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()  # the form has no script: "Add" rows are plain form posts
    page.goto(f"{site.url}/console/campaigns/new")
    sign_in(page, "mark", PASSWORDS["mark"])
    page.wait_for_url("**/console/campaigns/new")
    page.get_by_label("Name", exact=True).fill("spring-sale")
    page.get_by_label("Starts").fill(_local(5, 9))
    page.get_by_label("Ends").fill(_local(7, 20))
    page.get_by_label("Terms").fill("10% off everything")
    page.get_by_label("Channels").fill("email chat")
    page.get_by_label("Discount codes").fill("SPRING10")  # no "=what it gives": an error
    faq = {"hu": ("Meddig tart?", "Vasárnap estig."), "en": ("Until when?", "Until Sunday evening."),
           "sk": ("Dokedy?", "Do nedele večera."), "pl": ("Do kiedy?", "")}  # the Polish answer left out
    for i, (loc, (q, a)) in enumerate(faq.items()):
        if i:
            page.get_by_role("button", name="Add FAQ entry").click()
            page.get_by_label(f"Question {i + 1}").wait_for()
        page.get_by_label(f"Language of FAQ entry {i + 1}").select_option(loc)
        page.get_by_label(f"Question {i + 1}").fill(q)
        page.get_by_label(f"Answer {i + 1}", exact=True).fill(a)
    assert page.get_by_label("Name", exact=True).input_value() == "spring-sale"  # kept across "Add"
    page.get_by_label("Name of template answer 1").fill("code-help")
    page.get_by_label("Variables of template answer 1").fill("order_id")
    for loc in ("en", "hu", "sk"):
        page.get_by_label(f"Text of template answer 1 in {loc}").fill(f"[{loc}] {{{{ order_id }}}}")
    page.get_by_role("button", name="Register campaign").click()

    # Every error at once, each field marked and its message linked; one summary.
    assert page.get_by_role("alert").count() == 1
    for label in ("Answer 4", "Text of template answer 1 in pl", "Discount codes"):
        field = page.get_by_label(label, exact=True)
        assert field.get_attribute("aria-invalid") == "true", label
        message = page.locator("#" + (field.get_attribute("aria-describedby") or "").split()[0])
        assert message.is_visible() and message.text_content(), label
    check.accessible(page, "campaign-rows-errors")
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []

    page.get_by_label("Answer 4", exact=True).fill("Do niedzieli wieczorem.")
    page.get_by_label("Text of template answer 1 in pl").fill("[pl] {{ order_id }}")
    page.get_by_label("Discount codes").fill("SPRING10=10% off everything")
    page.get_by_role("button", name="Preview").click()
    assert page.get_by_role("alert").count() == 0
    assert page.get_by_role("heading", name="Still missing").count() == 1
    assert page.locator("#brief-preview").count() == 1 and page.locator("pre[lang=pl]").count() >= 2
    check.accessible(page, "campaign-preview")
    page.get_by_role("button", name="Register campaign").click()
    page.wait_for_url("**/console/campaigns?registered=spring-sale")
    listed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert [(r["name"], r["registered_by"]) for r in listed] == [("spring-sale", "mark")]

    page.get_by_role("link", name="spring-sale", exact=True).click()
    page.wait_for_url("**/console/campaigns/spring-sale")
    assert "An owner" in (page.locator("#missing + ul").text_content() or "")
    check.accessible(page, "campaign-page")
    page.get_by_role("link", name="Polski").click()
    assert page.get_by_role("heading", level=1).text_content() == "Kampania spring-sale"
    assert page.get_by_role("heading", name="Jeszcze brakuje").count() == 1
    check.accessible(page, "pl-campaign-page")
    page.get_by_role("link", name="Edytuj").click()
    assert page.get_by_label("Pytanie nr 3").input_value() == "Dokedy?"
    check.accessible(page, "pl-campaign-edit")
    context.close()
