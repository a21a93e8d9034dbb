"""The banner in a real browser: Debian's Chromium driven by Playwright opens the sample shop page (lang="hu")
served on loopback, a person runs `continuity outage phone` and `continuity restore phone` against the store a
real `continuity daemon` reads, and the banner comes, speaks Hungarian, can be dismissed, and goes.

Screenshots land in the test's tmp dir and, when CONTINUITY_TEST_ARTIFACTS names a folder, there as well.
Skipped (with the reason) only when Chromium or Playwright is not available or cannot start.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browserkit import chromium_browser
from tests.campaigns.kit import write
from tests.conftest import EXAMPLE_CONFIG, run_cli
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import DaemonProc

SHOP_PAGE = Path(__file__).parent / "shop" / "index.html"
# Shown on the banner through the chat channel's contact: must arrive as text, never as an element; of it,
# only the https URL may become a link (the javascript: one stays text).
INJECTED = '<img src=x onerror="window.pwned=1">'
SAFE_URL = "https://ok.example/x"
HOSTILE = f"{INJECTED} javascript:alert(1) {SAFE_URL}"
FAQ_URL = "https://shop.example.test/winter/faq"


def write_config(workdir: Path, daemon_port: int, shop_origin: str) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    edits = [
        ('    contact: "+36 1 234 5678"\n', '    contact: "+36 1 234 5678"\n'
                                             '    override:\n      website-banner: {after: 0s}\n'),
        ("    contact: https://shop.example.test/chat\n", f"    contact: '{HOSTILE}'\n"),
        ("  bind: 127.0.0.1:8765\n", f"  bind: 127.0.0.1:{daemon_port}\n"),
        ("    cors_origins: []", f"    cors_origins: [{shop_origin}]"),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Serves the sample shop page on loopback, its script tag pointed at `state[0]` (the daemon's URL)."""
    state: list[str] = ["http://127.0.0.1:8765"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            page = SHOP_PAGE.read_text(encoding="utf-8").replace("http://127.0.0.1:8765", state[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium_browser() as launched:
        yield launched


def save(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    artifacts = os.environ.get("CONTINUITY_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(artifacts) / name)
    return shot


def test_banner_appears_dismisses_and_goes_in_a_real_browser(tmp_path: Path, shop: tuple[str, list[str]],
                                                             browser: Any) -> None:
    shop_url, shop_state = shop
    daemon_port = free_port()
    shop_state[0] = f"http://127.0.0.1:{daemon_port}"
    config = write_config(tmp_path, daemon_port, shop_url)
    daemon = DaemonProc(config, daemon_port)
    daemon.start()
    try:
        page = browser.new_page(viewport={"width": 1024, "height": 700})
        page.goto(shop_url)
        region = page.locator("#continuity-banner")
        region.wait_for(state="attached")
        assert region.get_attribute("role") == "status" and region.get_attribute("aria-live") == "polite"
        page.wait_for_function("() => performance.getEntriesByType('resource')"
                               ".some(e => e.name.endsWith('/banner.json'))")
        assert page.locator(".cb-banner").count() == 0  # a calm day: nothing shown
        products = page.locator("#products").bounding_box()

        opened = run_cli(tmp_path, "outage", "phone", "--reason", "SIP trunk down at the provider", "--eta", "2h")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        banner = page.locator(".cb-banner")
        banner.wait_for(state="visible", timeout=10_000)
        assert banner.get_attribute("lang") == "hu"  # the page's language
        assert page.locator(".cb-title").text_content() == "Átmenetileg nem érhető el a telefonos ügyfélszolgálat"
        body = page.locator(".cb-body").first.text_content() or ""
        assert "help@shop.example.test" in body and INJECTED in body  # the markup is shown as text
        assert page.evaluate("() => window.pwned") is None
        assert page.locator("#continuity-banner img").count() == 0
        # The hostile contact's https URL is a link (the only one), its javascript: URL is not.
        links = page.locator("#continuity-banner a[href^='http']")
        assert links.count() == 1
        # The e-mail address is a mailto: link (issue 15); nothing else is.
        assert page.locator("#continuity-banner a[href^='mailto:']").get_attribute("href") == \
            "mailto:help@shop.example.test"
        assert page.locator("#continuity-banner a").count() == 2
        assert links.first.get_attribute("href") == SAFE_URL and links.first.text_content() == SAFE_URL
        assert links.first.get_attribute("rel") == "noopener"
        assert page.locator("#continuity-banner a[href^='javascript' i]").count() == 0
        assert f"{SAFE_URL})." in body  # the ")" and "." that follow it stay text
        assert page.locator("#products").bounding_box() == products  # an overlay: nothing on the page moved
        close = page.get_by_role("button", name="Értesítés bezárása")
        assert close.count() == 1
        save(page, tmp_path, "banner-hu.png")

        # The page's language decides: the same banner on a Slovak page.
        page.evaluate("() => { document.documentElement.lang = 'sk'; }")
        page.locator(".cb-banner[lang=sk]").wait_for(timeout=5_000)
        assert page.locator(".cb-title").text_content() == "Dočasne nefunguje telefonická linka"
        page.evaluate("() => { document.documentElement.lang = 'hu'; }")
        page.locator(".cb-banner[lang=hu]").wait_for(timeout=5_000)

        # Dismissed, it stays dismissed across polls and a reload...
        page.get_by_role("button", name="Értesítés bezárása").click()
        assert page.locator(".cb-banner").count() == 0
        page.reload()
        page.wait_for_function("() => performance.getEntriesByType('resource')"
                               ".filter(e => e.name.endsWith('/banner.json')).length >= 2", timeout=10_000)
        assert page.locator(".cb-banner").count() == 0
        # ...until it says something new: a later ETA is a new revision.
        later = run_cli(tmp_path, "outage", "phone", "--reason", "SIP trunk down at the provider", "--eta", "5h")
        assert later.returncode == 0, later.stdout + later.stderr
        page.locator(".cb-banner").wait_for(state="visible", timeout=10_000)

        mobile = browser.new_page(viewport={"width": 390, "height": 844})
        mobile.goto(f"http://127.0.0.1:{daemon_port}/status?lang=hu")
        assert "Üzemzavar: telefonos ügyfélszolgálat" in mobile.content()
        save(mobile, tmp_path, "status-hu-mobile.png")

        restored = run_cli(tmp_path, "restore", "phone")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        # The outage banner goes; for a while (banner_resolved_for) its last state says it works again.
        page.locator(".cb-banner:not(.cb-resolved)").wait_for(state="detached", timeout=10_000)
        assert page.locator(".cb-resolved .cb-title").text_content() == "Újra működik a telefonos ügyfélszolgálat"
        save(page, tmp_path, "banner-gone.png")
        assert (tmp_path / "banner-hu.png").stat().st_size > 1000
    finally:
        daemon.stop()


def test_campaign_faq_link_is_clickable_in_a_real_browser(tmp_path: Path, shop: tuple[str, list[str]],
                                                          browser: Any) -> None:
    shop_url, shop_state = shop
    daemon_port = free_port()
    shop_state[0] = f"http://127.0.0.1:{daemon_port}"
    config = write_config(tmp_path, daemon_port, shop_url)
    # The daemon keeps the real clock; the campaign starts a few days ahead (more than campaigns.min_lead),
    # and `tick` is run as of just after its launch, which switches the banner on in the ledger it reads.
    start = (datetime.now(UTC) + timedelta(days=4)).replace(microsecond=0)
    campaign = write(tmp_path, **{"start: 2026-12-01T08:00:00+01:00": f"start: {start.isoformat()}",
                                  "end: 2026-12-03T20:00:00+01:00":
                                      f"end: {(start + timedelta(days=2)).isoformat()}"})
    daemon = DaemonProc(config, daemon_port)
    daemon.start()
    try:
        registered = run_cli(tmp_path, "campaign", "register", str(campaign))
        assert registered.returncode == 0, registered.stdout + registered.stderr
        launched = run_cli(tmp_path, "tick", now=start + timedelta(minutes=1))
        assert launched.returncode == 0, launched.stdout + launched.stderr

        page = browser.new_page(viewport={"width": 1024, "height": 700})
        page.goto(shop_url)
        page.locator(".cb-banner").wait_for(state="visible", timeout=10_000)
        assert page.locator(".cb-title").text_content() == "Winter Sale: most nagy az érdeklődés"
        body = page.locator(".cb-body").first
        assert f"A legtöbb kérdésre itt megtalálja a választ: {FAQ_URL}" in (body.text_content() or "")
        link = body.locator("a")
        assert link.count() == 1
        assert link.get_attribute("href") == FAQ_URL and link.text_content() == FAQ_URL
        assert page.evaluate("() => document.querySelector('#continuity-banner a').href") == FAQ_URL
        save(page, tmp_path, "banner-campaign-hu.png")
    finally:
        daemon.stop()
