"""What agents use: the FAQ search (accent-insensitive, per locale, registered version only) and template
answers rendered to paste, with a clear error for missing variables; and the CLI around them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from continuity.campaigns import phases
from continuity.campaigns.agents import reply, search_faq
from continuity.campaigns.content import fold
from continuity.errors import InputError
from tests.campaigns.kit import WINTER, write
from tests.conftest import NOW, MakeEngine, RunCli


@pytest.mark.parametrize(("text", "query"), [("Kupón", "kupon"), ("zľava", "ZLAVA"), ("Łódź", "lodz"),
                                             ("płaszcze", "plaszcze"), ("Ďakujeme", "dakujeme")])
def test_folding_ignores_accents_and_case(text: str, query: str) -> None:
    assert fold(text) == fold(query)


def test_faq_search_is_accent_insensitive_and_per_locale(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    assert search_faq(eng, "coat") == []  # nothing registered yet
    phases.register(eng, write(workdir), by="marketing")
    [hu] = search_faq(eng, "kupon")
    assert (hu.campaign, hu.locale, hu.q) == ("winter-sale", "hu", "Mely kabátokra érvényes a kupon?")
    assert "-ig" in hu.a and "{{" not in hu.a  # rendered, with the campaign's end date
    [pl] = search_faq(eng, "lodzi")
    assert pl.locale == "pl"
    [sk] = search_faq(eng, "zlava", locale="sk")
    assert sk.q == "Na ktoré kabáty platí zľava?"
    assert search_faq(eng, "zlava", locale="hu") == []
    assert len(search_faq(eng)) == 4  # no query: every entry in every served locale
    assert len(search_faq(eng, "", locale="en")) == 1
    with pytest.raises(InputError, match="not served"):
        search_faq(eng, "x", locale="de")


def test_faq_of_ended_or_cancelled_campaigns_is_gone(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    phases.cancel(eng, "winter-sale", by="marketing")
    assert search_faq(eng, "coat") == []
    with pytest.raises(InputError, match="cancelled"):
        search_faq(eng, "coat", campaign="winter-sale")
    with pytest.raises(InputError, match="no campaign 'nope'"):
        search_faq(eng, "coat", campaign="nope")


def test_reply_renders_in_the_customers_language(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    out = reply(eng, "thanks", locale="sk", values={"customer_name": "Jana"})
    assert out.text == "Ďakujeme, Jana! Váš kód je WINTER15."
    assert reply(eng, "thanks", values={"customer_name": "Anna"}).locale == "hu"  # the organisation's default
    with pytest.raises(InputError) as missing:
        reply(eng, "thanks", locale="en")
    assert "needs customer_name" in str(missing.value) and "--var customer_name=" in str(missing.value)
    with pytest.raises(InputError, match="does not use order_id; it needs: customer_name"):
        reply(eng, "thanks", values={"customer_name": "A", "order_id": "1"})
    with pytest.raises(InputError, match="no answer 'thank-you'.*winter-sale: thanks"):
        reply(eng, "thank-you", values={})


def test_reply_uses_the_registered_snapshot_not_the_file(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    path = write(workdir)
    phases.register(eng, path, by="marketing")
    path.write_text(WINTER.replace("Thank you,", "Cheers,"), encoding="utf-8")  # edited, not updated
    assert reply(eng, "thanks", locale="en", values={"customer_name": "A"}).text.startswith("Thank you, A!")
    phases.update(eng, "winter-sale", path, by="marketing")
    assert reply(eng, "thanks", locale="en", values={"customer_name": "A"}).text.startswith("Cheers, A!")


def test_an_answer_in_two_campaigns_needs_campaign(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    later = WINTER.replace("name: winter-sale", "name: spring").replace("WINTER15", "SPRING10") \
        .replace("2026-12-01T08", "2027-03-01T08").replace("2026-12-03T20", "2027-03-03T20")
    phases.register(eng, write(workdir, later, name="spring.yaml"), by="marketing")
    with pytest.raises(InputError, match="several campaigns"):
        reply(eng, "thanks", values={"customer_name": "A"})
    out = reply(eng, "thanks", campaign="spring", locale="en", values={"customer_name": "A"})
    assert "SPRING10" in out.text


def test_campaign_commands_end_to_end(cli: RunCli, workdir: Path) -> None:
    path = write(workdir)
    reg = cli("campaign", "register", str(path), "--json", now=NOW)
    assert reg.returncode == 0, reg.stderr
    info = json.loads(reg.stdout)
    assert info["campaign"]["state"] == "registered" and info["warnings"] == []
    assert info["campaign"]["brief_at"] == "2026-11-28T08:00:00+00:00"  # 09:00 in Budapest, in working hours
    assert info["campaign"]["reminder_at"] == "2026-11-30T08:00:00+00:00"

    listed = json.loads(cli("campaign", "list", "--json", now=NOW).stdout)
    assert [c["name"] for c in listed] == ["winter-sale"]

    found = cli("faq", "kabat", "--locale", "hu", now=NOW)
    assert found.returncode == 0 and "Mely kabátokra érvényes a kupon?" in found.stdout and "[hu]" in found.stdout

    pasted = cli("reply", "thanks", "--locale", "pl", "--var", "customer_name=Kasia", now=NOW)
    assert pasted.returncode == 0 and pasted.stdout.strip() == "Dziękujemy, Kasia! Twój kod to WINTER15."
    missing = cli("reply", "thanks", "--locale", "pl", now=NOW)
    assert missing.returncode == 2 and "needs customer_name" in missing.stderr and "Traceback" not in missing.stderr

    brief = cli("campaign", "brief", "winter-sale", now=NOW + timedelta(hours=1))
    assert brief.returncode == 0 and "sent" in brief.stdout
    again = cli("campaign", "brief", "winter-sale", now=NOW + timedelta(hours=2))
    assert again.returncode == 0 and "already went out" in again.stdout

    changed = write(workdir, name="v2.yaml", **{"discount: 15%": "discount: 20%"})
    upd = cli("campaign", "update", "winter-sale", str(changed), "--json", now=NOW + timedelta(hours=3))
    assert upd.returncode == 0, upd.stderr
    assert json.loads(upd.stdout)["staff_told"] is True

    shown = json.loads(cli("campaign", "show", "winter-sale", "--json", now=NOW + timedelta(hours=3)).stdout)
    assert shown["state"] == "briefed" and [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["snapshot"]["codes"][0]["discount"] == "20%"
    assert {s["step"] for s in shown["steps"]} >= {"brief", "launch-banner", "campaign-changed"}

    cancelled = cli("campaign", "cancel", "winter-sale", now=NOW + timedelta(hours=4))
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    outbox = sorted(p.name for p in (workdir / "outbox").iterdir())
    assert sum("-brief-apply-" in n for n in outbox) == 1 and sum("-summary-apply-" in n for n in outbox) == 1
    assert not any("launch" in n for n in outbox)
    assert cli("campaign", "cancel", "winter-sale", now=NOW + timedelta(hours=4)).returncode == 2


def test_help_says_what_reaches_customers_and_staff(cli: RunCli) -> None:
    out = cli("campaign", "register", "--help")
    assert out.returncode == 0 and "banner" in out.stdout and "briefed" in out.stdout
