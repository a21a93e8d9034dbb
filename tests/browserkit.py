"""Debian's Chromium through Playwright, and axe-core, for every browser test (the public pages, the console).

`chromium_browser()` launches the browser (never a download: Debian's binary at /usr/bin/chromium, or
$CHROMIUM) and skips the test with the reason when Chromium or Playwright is missing; `axe_script()` finds
axe-core (AXE_CORE_JS, else the virtualenv's node_modules, installed there with npm on first use)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/lib/chromium/chromium")
                 if p and Path(p).is_file()), None)
VENV = Path(sys.prefix)


@contextmanager
def chromium_browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it with apt)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} cannot start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def axe_script() -> Path | None:
    given = os.environ.get("AXE_CORE_JS")
    if given:
        return Path(given) if Path(given).is_file() else None
    path = VENV / "node_modules" / "axe-core" / "axe.min.js"
    if not path.is_file() and shutil.which("npm"):
        import fcntl

        # One install at a time: test workers may all ask at once (scripts/test.sh installs it beforehand).
        with (VENV / ".axe-core.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                subprocess.run(["npm", "install", "--prefix", str(VENV), "--no-audit", "--no-fund", "axe-core"],
                               capture_output=True, timeout=300, check=False)
    return path if path.is_file() else None
