"""The resolved banner in real Chromium on a shop of another origin: styled as good news (its own colours),
axe-core finds no serious or critical violation at 390 and 1280 px, and the close button and Escape work as
for the outage banner. A real daemon; the outage and its restore by CLI processes minutes in the past
(CONTINUITY_NOW), so the daemon's own clock finds the restore within `banner_resolved_for`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import DaemonProc
from tests.public.test_accessibility import SIZES, axe, shop, violations  # noqa: F401 (the fixtures)
from tests.public.test_browser import browser, save  # noqa: F401 (the fixture)
from tests.test_customer_texts import daemon_config


@pytest.fixture
def restored(tmp_path: Path) -> Iterator[str]:
    """A real daemon on the shipped config (banner at once); phone down 40 minutes ago, restored 2 ago."""
    port = free_port()
    daemon = DaemonProc(daemon_config(tmp_path, port), port)
    daemon.start()
    now = datetime.now(UTC)
    try:
        for args, at in ((("outage", "phone", "--reason", "SIP trunk down", "--cause", "provider"), 40),
                         (("restore", "phone"), 2)):
            done = run_cli(tmp_path, *args, now=now - timedelta(minutes=at))
            assert done.returncode == 0, done.stdout + done.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        daemon.stop()


def test_resolved_banner_is_good_news_and_accessible(tmp_path: Path, shop: tuple[str, list[str]],  # noqa: F811
                                                    restored: str, browser: Any, axe: Path) -> None:  # noqa: F811
    shop_url, state = shop
    state[0], state[1] = restored, "top"
    for size in SIZES:
        page = browser.new_page(viewport=size)
        page.goto(shop_url)
        page.locator(".cb-banner.cb-resolved").wait_for(state="visible", timeout=10_000)
        assert page.locator(".cb-banner").count() == 1  # the outage banner itself is gone
        assert "Újra működik a telefonos ügyfélszolgálat" in page.locator(".cb-title").inner_text()
        colours = page.evaluate("() => getComputedStyle(document.querySelector('.cb-resolved')).backgroundColor")
        assert colours == "rgb(226, 244, 229)"  # not the outage banner's warning yellow
        assert violations(page, axe) == [], size
        save(page, tmp_path, f"shop-banner-resolved-{size['width']}.png")

        # Escape closes it and focus goes back to the page; the close button does the same in a new visit.
        page.locator(".cb-close").focus()
        page.keyboard.press("Escape")
        assert page.locator(".cb-banner").count() == 0
        page.evaluate("() => localStorage.clear()")
        page.reload()
        page.locator(".cb-resolved .cb-close").click(timeout=10_000)
        assert page.locator(".cb-banner").count() == 0
        page.evaluate("() => localStorage.clear()")
        page.close()
