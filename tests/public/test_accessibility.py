"""The customer's pages in real Chromium (issue 15): the banner on a shop of another origin with the shipped
CORS settings, at the top and at the bottom, on a 390 px phone and a 1280 px screen; /status in every locale.

axe-core (the npm package, injected into the page) finds no serious or critical violation; the shop's header
stays visible and clickable under a top banner; no focused element of the shop is entirely behind the banner
while tabbing through the whole page; the banner's close button follows its text in the tab order, Escape
closes it and focus returns where it was; on a phone the banner takes at most about a fifth of the screen.
Skipped with the reason when Chromium, Playwright or axe-core is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browserkit import axe_script
from tests.conftest import run_cli
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import DaemonProc
from tests.public.test_browser import browser, save  # noqa: F401 (the fixture)
from tests.test_customer_texts import daemon_config

MENU_PAGE = Path(__file__).parent / "shop" / "menu.html"
SIZES = ({"width": 390, "height": 844}, {"width": 1280, "height": 800})


@pytest.fixture
def axe() -> Path:
    found = axe_script()
    if found is None:
        pytest.skip("axe-core is not installed: npm install --prefix .venv axe-core (or set AXE_CORE_JS)")
    return found


@pytest.fixture
def shop() -> Iterator[tuple[str, list[str]]]:
    """The menu shop page on its own loopback origin; `state` = [daemon URL, banner position]."""
    state = ["http://127.0.0.1:8765", "bottom"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            page = (MENU_PAGE.read_text(encoding="utf-8").replace("http://127.0.0.1:8765", state[0])
                    .replace("POSITION", state[1]).encode())
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
def outage(tmp_path: Path) -> Iterator[str]:
    """A real daemon on the shipped config (CORS untouched), a phone outage declared through the CLI."""
    port = free_port()
    daemon = DaemonProc(daemon_config(tmp_path, port), port)
    daemon.start()
    try:
        opened = run_cli(tmp_path, "outage", "phone", "--reason", "A szolgáltatónál leállt a SIP trönk",
                         "--cause", "provider", "--eta", "2h")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        daemon.stop()


def violations(page: Any, axe: Path) -> list[str]:
    page.add_script_tag(path=str(axe))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


# Tab through the page: for each focused element outside the banner, is it entirely behind the banner?
TAB_CHECK = """() => {
  const el = document.activeElement, banner = document.getElementById('continuity-banner');
  if (!el || el === document.body) return {done: true};
  const inBanner = banner.contains(el);
  const r = el.getBoundingClientRect(), b = banner.getBoundingClientRect();
  const w = Math.max(0, Math.min(r.right, b.right) - Math.max(r.left, b.left));
  const h = Math.max(0, Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top));
  const hidden = !inBanner && r.width * r.height > 0 && w * h >= r.width * r.height - 1;
  return {done: false, inBanner, hidden, id: el.id || el.textContent.trim().slice(0, 30),
          close: el.classList.contains('cb-close')};
}"""


@pytest.mark.parametrize("position", ["top", "bottom"])
def test_banner_on_a_shop_of_another_origin_is_accessible(tmp_path: Path, shop: tuple[str, list[str]],
                                                          outage: str, browser: Any, axe: Path,  # noqa: F811
                                                          position: str) -> None:
    shop_url, state = shop
    state[0], state[1] = outage, position
    for size in SIZES:
        page = browser.new_page(viewport=size)
        page.goto(shop_url)
        page.locator(".cb-banner").wait_for(state="visible", timeout=10_000)  # read across origins by default
        page.wait_for_function("() => document.querySelector('.cb-spacer').offsetHeight > 0")
        banner = page.locator("#continuity-banner").bounding_box()
        assert banner is not None
        if size["width"] == 390:  # a phone: at most about a fifth of the screen, the details a tap away
            assert banner["height"] <= 0.21 * size["height"], banner
            assert page.locator(".cb-more").get_attribute("open") is None
            page.locator(".cb-more summary").click()
            assert page.locator(".cb-more").get_attribute("open") is not None
            page.locator(".cb-more summary").click()
        # The shop's header is not covered: its logo and basket are what a click at their centre reaches.
        for target in ("#logo", "#basket"):
            box = page.locator(target).bounding_box()
            assert box is not None
            hit = page.evaluate("([x, y, sel]) => document.elementFromPoint(x, y) === document.querySelector(sel)",
                                [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, target])
            assert hit, (position, size, target)
        assert violations(page, axe) == [], (position, size)
        save(page, tmp_path, f"shop-banner-{position}-{size['width']}.png")

        # Tab through everything: the banner comes first (its close button right after its text), and no
        # focused element of the shop is entirely behind it, at the top the menu, at the bottom the last links.
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
        seen: list[dict[str, Any]] = []
        for _ in range(40):
            page.keyboard.press("Tab")
            now = page.evaluate(TAB_CHECK)
            if now["done"] or (seen and now["id"] == seen[0]["id"] and not now["inBanner"]):
                break
            seen.append(now)
            assert not now["hidden"], (position, size, now)
        in_banner = [s["inBanner"] for s in seen]
        first_out = in_banner.index(False)
        assert all(in_banner[:first_out]) and seen[first_out - 1]["close"], seen[:first_out + 1]
        assert {"logo", "basket", "last"} <= {s["id"] for s in seen}

        # Escape closes the banner and focus goes back to where it was before the banner: walking back from
        # the basket through the menu, the logo was the last stop of the page.
        page.locator("#basket").focus()
        page.keyboard.press("Shift+Tab")
        for _ in range(10):
            if page.evaluate("() => document.getElementById('continuity-banner').contains(document.activeElement)"):
                break
            page.keyboard.press("Shift+Tab")
        assert page.evaluate("() => document.activeElement.classList.contains('cb-close')")  # just before the page
        page.keyboard.press("Escape")
        assert page.locator(".cb-banner").count() == 0
        assert page.evaluate("() => document.activeElement.id") == "logo"
        page.evaluate("() => localStorage.clear()")
        page.close()


def test_status_page_in_every_locale_is_accessible_links_contacts_and_has_a_favicon(
        tmp_path: Path, outage: str, browser: Any, axe: Path) -> None:  # noqa: F811
    for lang in ("hu", "en", "sk", "pl"):
        for size in SIZES:
            page = browser.new_page(viewport=size)
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{outage}/status?lang={lang}")
            assert page.locator("meta[http-equiv=refresh]").count() == 0  # WCAG 2.2.1: no reload under the reader
            assert page.locator("#cb-auto").is_visible()  # status.js runs (the CSP allows it)
            assert page.locator("a[href='tel:+3612345678']").count() >= 1
            assert page.locator("a[href='mailto:help@shop.example.test']").count() >= 1
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), (lang, size)
            assert errors == [], errors  # nothing refused by the CSP, no failed request (the favicon either)
            save(page, tmp_path, f"status-{lang}-{size['width']}.png")
            page.close()
            # axe-core is injected inline, which the page's CSP rightly refuses: audit a CSP-less twin.
            audit = browser.new_page(viewport=size, bypass_csp=True)
            audit.goto(f"{outage}/status?lang={lang}")
            assert violations(audit, axe) == [], (lang, size)
            audit.close()
    page = browser.new_page()
    answer = page.goto(f"{outage}/favicon.ico")
    assert answer is not None and answer.status == 200
    assert answer.headers["content-type"] == "image/x-icon"
    page.close()


def test_status_updates_in_place_without_reloading(tmp_path: Path, outage: str, browser: Any) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{outage}/status?lang=en")
    page.evaluate("() => { window.marker = 1; }")
    assert "Outage" in (page.locator("#live").text_content() or "")
    restored = run_cli(tmp_path, "restore", "phone")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # status.js re-reads the page every minute (data-refresh="60") and when the reader comes back to the tab:
    # the second, so the test need not wait a minute.
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_function("() => !document.getElementById('live').textContent.includes('Outage')",
                           timeout=15_000)
    assert page.evaluate("() => window.marker") == 1  # the same page: updated in place, not reloaded
    page.close()
