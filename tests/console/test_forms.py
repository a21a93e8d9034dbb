"""The console's forms over real HTTP against a real daemon: sign-in (wrong password, throttle, the page
asked for), cookies, CSRF, roles (403 and forms not offered), declare / restore through the engine (checked
with `continuity status --json`), session expiry, sign-out, and no secret in the logs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tests.console.kit import PASSWORDS, ConsoleSite, cli

Make = Callable[..., ConsoleSite]


def test_visitor_is_sent_to_sign_in_and_back_to_the_page_asked_for(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    first = c.get("/console/campaigns")
    assert first.status == 303 and first.headers["location"] == "/console/login?next=/console/campaigns"
    page = c.get(first.headers["location"])
    assert page.status == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    signed = c.sign_in("olga", next_path="/console/campaigns")
    assert signed.status == 303 and signed.headers["location"] == "/console/campaigns"
    cookie = next(h for h in signed.cookies if h.startswith("continuity_console="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; over https it is Secure
    assert c.get("/console/campaigns").status == 200
    # An outside target is not followed after sign-in.
    other = site.client()
    assert other.sign_in("vera", next_path="//evil.example/x").headers["location"] == "/console/"


def test_wrong_password_and_unknown_user_say_the_same_thing(console_site: Make) -> None:
    site = console_site()
    wrong = site.client().sign_in("olga", "not-her-password")
    unknown = site.client().sign_in("nobody", "whatever-password")
    for answer in (wrong, unknown):
        assert answer.status == 401
        assert "The user name or the password is wrong." in answer.text
        assert 'role="alert"' in answer.text
    assert site.client().sign_in("olga").status == 303


def test_sign_in_is_throttled_per_user_and_address(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    for _ in range(5):
        assert c.sign_in("olga", "guess-guess").status == 401
    # The sixth try is refused even with the right password, and says why.
    throttled = c.sign_in("olga")
    assert throttled.status == 429 and "Too many failed sign-ins" in throttled.text
    assert c.session_cookie() is None
    # Another user from the same address is not locked out by olga's failures.
    assert site.client().sign_in("vera").status == 303


def test_a_post_without_its_csrf_token_changes_nothing(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    assert c.sign_in("olga").status == 303
    forged = c.post("/console/declare", {"channel": "phone", "reason": "forged", "do": "declare"})
    assert forged.status == 403 and "nothing was changed" in forged.text
    wrong = c.post("/console/declare", {"csrf": "x" * 43, "channel": "phone", "reason": "forged", "do": "declare"})
    assert wrong.status == 403
    assert site.status_json()["open"] == []
    # The sign-in form has its own token too.
    assert site.client().post("/console/login", {"username": "olga", "password": PASSWORDS["olga"]}).status == 403


def test_oncall_declares_and_restores_through_the_engine(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("olga")
    form = c.get("/console/declare")
    assert form.status == 200 and ">Declare outage</button>" in form.text and ">Preview</button>" in form.text
    bad = c.post("/console/declare", {"csrf": form.csrf(), "channel": "phone", "reason": "", "eta": "tomorrowish",
                                      "do": "declare"})
    assert bad.status == 400
    # Every error at once, each next to its field.
    assert 'id="reason-error"' in bad.text and 'id="eta-error"' in bad.text and 'role="alert"' in bad.text
    assert re.search(r'id="eta"[^>]*aria-invalid="true" aria-describedby="eta-error', bad.text)
    assert site.status_json()["open"] == []
    preview = c.post("/console/declare", {"csrf": form.csrf(), "channel": "phone", "reason": "SIP trunk down",
                                          "eta": "2h", "do": "preview"})
    assert preview.status == 200 and "staff-runbook" in preview.text
    assert site.status_json()["open"] == []  # a preview changes nothing
    declared = c.post("/console/declare", {"csrf": form.csrf(), "channel": "phone", "reason": "SIP <b>trunk</b> down",
                                           "eta": "2h", "do": "declare"})
    assert declared.status == 303, declared.text
    assert declared.headers["location"].startswith("/console/situations/"), declared.headers
    opened = site.status_json()["open"]
    assert len(opened) == 1, site.status_json()
    assert len(opened) == 1 and opened[0]["channel"] == "phone" and opened[0]["opened_by"] == "olga"
    assert opened[0]["source"] == "console" and opened[0]["eta"]
    page = c.get(declared.headers["location"])
    assert "SIP &lt;b&gt;trunk&lt;/b&gt; down" in page.text and "<b>trunk" not in page.text  # text, never markup
    assert ">Restore</button>" in page.text and '<label for="note">Note</label>' in page.text
    dash = c.get("/console/")
    assert f"#{opened[0]['id']} outage of" in dash.text and 'data-refresh="30"' in dash.text
    restored = c.post(f"/console/situations/{opened[0]['id']}/restore", {"csrf": page.csrf(), "note": "trunk back"})
    assert restored.status == 303
    status = site.status_json()
    assert status["open"] == []
    report = cli(site.workdir, "report", str(opened[0]["id"]), "--format", "json")
    assert '"closed_by": "olga"' in report.stdout and "trunk back" in report.stdout


def test_marketing_and_viewer_cannot_declare_and_are_not_offered_it(console_site: Make) -> None:
    site = console_site()
    for name in ("mark", "vera"):
        c = site.client()
        c.sign_in(name)
        dash = c.get("/console/")
        assert dash.status == 200
        assert "/console/declare" not in dash.text and "Declare" not in dash.text
        assert 'href="/console/campaigns">Campaigns</a>' in dash.text
        assert c.get("/console/declare").status == 403
        refused = c.post("/console/declare", {"csrf": dash.csrf(), "channel": "phone", "reason": "x", "do": "declare"})
        assert refused.status == 403 and "may not do this" in refused.text
    assert site.status_json()["open"] == []
    # ...nor offered restore on an open outage someone else declared.
    olga = site.client()
    olga.sign_in("olga")
    form = olga.get("/console/declare")
    sid = olga.post("/console/declare", {"csrf": form.csrf(), "channel": "email", "reason": "MX down",
                                         "do": "declare"}).headers["location"].rsplit("/", 1)[1]
    mark = site.client()
    mark.sign_in("mark")
    page = mark.get(f"/console/situations/{sid}")
    assert page.status == 200 and ">Restore</button>" not in page.text
    assert mark.post(f"/console/situations/{sid}/restore", {"csrf": page.csrf()}).status == 403
    assert len(site.status_json()["open"]) == 1


def test_sessions_expire_and_sign_out_ends_them(console_site: Make) -> None:
    site = console_site(console="{session_ttl: 2s}")
    c = site.client()
    c.sign_in("vera")
    assert c.get("/console/").status == 200
    time.sleep(2.5)
    assert c.get("/console/").status == 303  # expired: back to sign-in
    c.sign_in("vera")
    dash = c.get("/console/")
    kept = c.session_cookie()
    out = c.post("/console/logout", {"csrf": dash.csrf()})
    assert out.status == 303 and out.headers["location"] == "/console/login"
    # The old cookie is dead on the server too, not only forgotten by the browser.
    replay = site.client()
    replay.jar.set_cookie(next(ck for ck in c.jar) if kept is None else _cookie(kept, site.port))
    assert replay.get("/console/").status == 303


def _cookie(value: str, port: int) -> object:
    import http.cookiejar

    return http.cookiejar.Cookie(0, "continuity_console", value, str(port), True, "127.0.0.1", False, False,
                                 "/console/", True, False, None, False, None, None, {})


def test_password_change_and_removal_end_sessions_and_nothing_secret_is_logged(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("olga")
    session_id = c.session_cookie()
    assert session_id and c.get("/console/").status == 200
    changed = cli(site.workdir, "user", "passwd", "olga", "--password-stdin", stdin="a-brand-new-password\n")
    assert changed.returncode == 0, changed.stderr
    assert c.get("/console/").status == 303
    assert site.client().sign_in("olga", "a-brand-new-password").status == 303
    listed = cli(site.workdir, "user", "list", "--json")
    assert '"olga"' in listed.stdout and "argon2" not in listed.stdout
    removed = cli(site.workdir, "user", "remove", "mark")
    assert removed.returncode == 0
    assert site.client().sign_in("mark").status == 401
    # A password typed into the user name field by mistake stays out of the log.
    assert site.client().sign_in("Tr0ub4dor&3-typed-as-name", "x").status == 401
    site.daemon.stop()
    logs = site.daemon.log_text()
    assert "signed in" in logs and "an unknown user name" in logs
    for secret in (session_id, *PASSWORDS.values(), "a-brand-new-password", "argon2", "Tr0ub4dor"):
        assert secret not in logs


def _local(days: float, hour: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.now() + timedelta(days=days)).strftime(f"%Y-%m-%dT{hour:02d}:00")


def test_marketing_registers_a_campaign_with_every_error_next_to_its_field(console_site: Make) -> None:
    import json

    site = console_site()
    c = site.client()
    c.sign_in("mark")
    listing = c.get("/console/campaigns")
    assert 'href="/console/campaigns/new">Register campaign</a>' in listing.text
    form = c.get("/console/campaigns/new")
    assert form.status == 200 and 'value="Europe/Budapest"' in form.text  # the organisation's zone by default
    missing = c.post("/console/campaigns/new", {"csrf": form.csrf(), "name": "spring-sale", "starts": "",
                                                "ends": "", "timezone": "Mars/Olympus"})
    assert missing.status == 400
    for field in ("starts", "ends", "timezone"):
        assert f'id="{field}-error"' in missing.text, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="{field}-error', missing.text)
    backwards = c.post("/console/campaigns/new", {"csrf": form.csrf(), "name": "spring-sale", "starts": _local(5, 9),
                                                  "ends": _local(4, 9), "timezone": "Europe/Budapest",
                                                  "terms": "10% off", "channels": "email",
                                                  "faq_url": "https://shop.example.test/faq"})
    assert backwards.status == 400 and 'role="alert"' in backwards.text
    assert re.search(r'id="(ends|starts)-error">[^<]*(end|start)', backwards.text), backwards.text[-3000:]
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []
    ok = c.post("/console/campaigns/new", {"csrf": form.csrf(), "name": "spring-sale", "starts": _local(5, 9),
                                           "ends": _local(7, 20), "timezone": "Europe/Budapest", "terms": "10% off",
                                           "channels": "email chat", "codes": "SPRING10=10% off everything",
                                           "faq_url": "https://shop.example.test/faq"})
    assert ok.status == 303 and ok.headers["location"] == "/console/campaigns?registered=spring-sale"
    listed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert [(r["name"], r["registered_by"], r["codes"]) for r in listed] == [("spring-sale", "mark", ["SPRING10"])]
    assert "upcoming" in c.get("/console/campaigns").text
    # A viewer reads the list but is neither offered nor allowed the form.
    v = site.client()
    v.sign_in("vera")
    page = v.get("/console/campaigns")
    assert "spring-sale" in page.text and "Register campaign" not in page.text
    assert v.get("/console/campaigns/new").status == 403
    assert v.post("/console/campaigns/new", {"csrf": page.csrf(), "name": "x"}).status == 403


def test_settle_and_retry_from_the_situation_page(console_site: Make) -> None:
    """A step left uncertain (a mail server that took a message and never confirmed it) and one whose
    retries ran out, made so in the ledger by hand; the on-call person settles and retries them."""
    import sqlite3

    site = console_site()
    c = site.client()
    c.sign_in("olga")
    form = c.get("/console/declare")
    sid = c.post("/console/declare", {"csrf": form.csrf(), "channel": "phone", "reason": "SIP down",
                                      "do": "declare"}).headers["location"].rsplit("/", 1)[1]
    conn = sqlite3.connect(site.workdir / "continuity.db")
    with conn:
        rows = conn.execute("SELECT id, step_id FROM steps WHERE situation_id = ? AND state = 'done' ORDER BY id",
                            (int(sid),)).fetchall()
        uncertain, failed = rows[0][0], rows[1][0]
        conn.execute("UPDATE steps SET state = 'uncertain' WHERE id = ?", (uncertain,))
        conn.execute("UPDATE steps SET state = 'failed', last_error = 'smtp: 421 try later' WHERE id = ?", (failed,))
    conn.close()
    page = c.get(f"/console/situations/{sid}")
    assert "smtp: 421 try later" in page.text
    assert f'action="/console/steps/{uncertain}/sent"' in page.text
    assert f'action="/console/steps/{failed}/retry"' in page.text
    # The viewer sees the page without those forms, and is refused them.
    v = site.client()
    v.sign_in("vera")
    seen = v.get(f"/console/situations/{sid}")
    assert "/steps/" not in seen.text and ">Restore</button>" not in seen.text
    assert v.post(f"/console/steps/{uncertain}/sent", {"csrf": seen.csrf()}).status == 403
    assert c.post(f"/console/steps/{uncertain}/sent", {"csrf": page.csrf()}).status == 303
    assert c.post(f"/console/steps/{failed}/retry", {"csrf": page.csrf()}).status == 303
    # Settling twice is a clear error on the page, not a crash.
    again = c.post(f"/console/steps/{uncertain}/sent", {"csrf": page.csrf()})
    assert again.status == 400 and "not uncertain" in again.text
    report = cli(site.workdir, "report", sid, "--format", "json").stdout
    assert "confirmed sent by olga" in report and "sent again by olga" in report


def test_the_console_speaks_hungarian_when_asked(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    login = c.get("/console/login")
    assert login.headers["content-language"] == "en"  # the shipped config's staff locale
    switched = c.get("/console/lang/hu?next=/console/login")
    assert switched.status == 303 and switched.headers["location"] == "/console/login"
    page = c.get("/console/login")
    assert page.headers["content-language"] == "hu" and '<html lang="hu">' in page.text
    assert ">Felhasználónév</label>" in page.text and ">Bejelentkezés</button>" in page.text
    wrong = c.post("/console/login", {"csrf": page.csrf(), "next": "/console/", "username": "olga", "password": "x"})
    assert "A felhasználónév vagy a jelszó hibás." in wrong.text
    assert c.get("/console/lang/xx?next=//evil.example").headers["location"] == "/console/"
    assert c.get("/console/console.js").headers["content-type"].startswith("text/javascript")


def test_maintenance_is_planned_and_cancelled_by_on_call_only(console_site: Make) -> None:
    import json

    site = console_site()
    c = site.client()
    c.sign_in("olga")
    page = c.get("/console/maintenance")
    assert page.status == 200 and "No maintenance is planned." in page.text
    bad = c.post("/console/maintenance", {"csrf": page.csrf(), "channel": "phone", "start": _local(3, 22),
                                          "end": "", "reason": "", "notice": "soon"})
    assert bad.status == 400
    for field in ("end", "reason", "notice"):
        assert f'id="m-{field}-error"' in bad.text, field
    assert json.loads(cli(site.workdir, "maintenance", "list", "--json").stdout) == []
    ok = c.post("/console/maintenance", {"csrf": page.csrf(), "channel": "phone", "start": _local(3, 22),
                                         "end": _local(3, 23), "reason": "PBX firmware upgrade", "notice": "1d"})
    assert ok.status == 303
    listed = json.loads(cli(site.workdir, "maintenance", "list", "--json").stdout)
    assert [(w["channel"], w["created_by"], w["notice_seconds"]) for w in listed] == [("phone", "olga", 86400)]
    mark = site.client()
    mark.sign_in("mark")
    seen = mark.get("/console/maintenance")
    assert "PBX firmware upgrade" in seen.text
    assert "Plan maintenance" not in seen.text and "Cancel window" not in seen.text
    assert mark.post(f"/console/maintenance/{listed[0]['id']}/cancel", {"csrf": seen.csrf()}).status == 403
    assert c.post(f"/console/maintenance/{listed[0]['id']}/cancel", {"csrf": page.csrf()}).status == 303
    assert json.loads(cli(site.workdir, "maintenance", "list", "--json").stdout) == []
    box = c.get("/console/autoreply")
    assert box.status == 200 and "<h1>Auto-responder</h1>" in box.text


def test_update_reason_and_eta_from_the_situation_page(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("olga")
    form = c.get("/console/declare")
    sid = c.post("/console/declare", {"csrf": form.csrf(), "channel": "chat", "reason": "widget down", "eta": "1h",
                                      "do": "declare"}).headers["location"].rsplit("/", 1)[1]
    before = site.status_json()["open"][0]["eta"]
    bad = c.post(f"/console/situations/{sid}/update", {"csrf": form.csrf(), "reason": "widget down", "eta": "soonish"})
    assert bad.status == 400 and "expected a duration" in bad.text
    assert site.status_json()["open"][0]["eta"] == before
    done = c.post(f"/console/situations/{sid}/update", {"csrf": form.csrf(), "reason": "widget CDN down",
                                                        "eta": "3h"})
    assert done.status == 303
    now_open = site.status_json()["open"][0]
    assert now_open["reason"] == "widget CDN down" and now_open["eta"] > before
    report = cli(site.workdir, "report", sid, "--format", "json").stdout
    assert "ETA changed by olga" in report
