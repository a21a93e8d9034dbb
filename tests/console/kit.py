"""A real `continuity daemon` serving the console, users added with the real CLI, and a small cookie-keeping
HTTP client that does not follow redirects (so a test sees each 303, 401, 403 and 429 as it is)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import EXAMPLE_CONFIG
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import DaemonProc

PASSWORDS = {"olga": "olga-on-call-pw", "mark": "mark-marketing-pw", "vera": "vera-viewer-pw"}
ROLES = {"olga": "oncall", "mark": "marketing", "vera": "viewer"}


def cli(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONTINUITY_NOW", "CONTINUITY_CONFIG")}
    env.update({"CONTINUITY_USER": "tester", "COLUMNS": "250", "NO_COLOR": "1"})
    return subprocess.run([sys.executable, "-m", "continuity", "--config", str(workdir / "continuity.yaml"), *args],
                          cwd=workdir, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def write_config(workdir: Path, port: int, console: str = "") -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    old = "  bind: 127.0.0.1:8765\n"
    assert text.count(old) == 1
    text = text.replace(old, f"  bind: 127.0.0.1:{port}\n" + (f"  console: {console}\n" if console else ""))
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    cookies: list[str]

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.text)
        assert found, self.text[:2000]
        return found.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Browserless:
    """A client with its own cookie jar, like one browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, path: str, form: dict[str, str] | None = None) -> Answer:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)
        try:
            with self.opener.open(req, timeout=20) as r:
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode(),
                              r.headers.get_all("Set-Cookie") or [])
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode(),
                              exc.headers.get_all("Set-Cookie") or [])

    def get(self, path: str) -> Answer:
        return self.request(path)

    def post(self, path: str, form: dict[str, str]) -> Answer:
        return self.request(path, form)

    def sign_in(self, name: str, password: str | None = None, next_path: str = "/console/") -> Answer:
        page = self.get(f"/console/login?next={urllib.parse.quote(next_path)}")
        return self.post("/console/login", {"csrf": page.csrf(), "next": next_path, "username": name,
                                            "password": PASSWORDS[name] if password is None else password})

    def session_cookie(self) -> str | None:
        return next((c.value for c in self.jar if c.name == "continuity_console"), None)


class ConsoleSite:
    def __init__(self, workdir: Path, console: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(workdir, self.port, console)
        for name, role in ROLES.items():
            added = cli(workdir, "user", "add", name, "--role", role, "--password-stdin", stdin=PASSWORDS[name] + "\n")
            assert added.returncode == 0, added.stdout + added.stderr
        self.daemon = DaemonProc(self.config, self.port)

    def client(self) -> Browserless:
        return Browserless(self.url)

    def status_json(self) -> dict[str, object]:
        import json

        shown = cli(self.workdir, "status", "--json")
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))
