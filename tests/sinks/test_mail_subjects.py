"""Long localised subjects survive folding with every space in place, in the outbox and over SMTP."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from continuity.mailpolicy import MAIL, SMTP_MAIL

SUBJECTS = [
    "[Webshop Kft.] #12 Údržba skončila: chat – overte, či funguje a ďalšie veci, ktoré sú tu dlhé",
    "[Sklep] #3 Awaria: czat – sprawdźcie, czy działa, i odpowiedzcie klientom jak najszybciej",
    "[Webshop] #1 Kiesés: telefon – az ügyfelek e-mailben és chaten érhetnek el minket, lassabban",
    "[Webshop] #2 Phone outage: customers are told to write to us by email or chat instead, slower",
    "Ü",
]


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("pol", [MAIL, SMTP_MAIL], ids=["file", "smtp"])
def test_subject_round_trips_and_lines_stay_short(subject: str, pol: policy.EmailPolicy) -> None:
    msg = EmailMessage(policy=pol)
    msg["From"] = "Ügyfélszolgálat <help@shop.example.test>"
    msg["To"] = "customer@example.test"
    msg["Subject"] = subject
    msg.set_content("Kedves Ügyfelünk!\n")
    raw = msg.as_bytes()
    back = message_from_bytes(raw, policy=policy.default)
    assert back["Subject"] == subject
    assert back["From"].addresses[0].display_name == "Ügyfélszolgálat"
    assert max(len(line) for line in raw.splitlines()) <= 78


def test_the_default_policy_would_lose_a_space() -> None:
    """Why MailPolicy exists: if this starts passing, the standard library is fixed and it can go."""
    msg = EmailMessage()
    msg["Subject"] = SUBJECTS[0]
    msg.set_content("x")
    assert message_from_bytes(msg.as_bytes(), policy=policy.default)["Subject"] != SUBJECTS[0]
