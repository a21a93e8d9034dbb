"""What the console's pages show, as plain data read from the store and the daemon's health (no HTML here),
and the declare form's checks (the CLI's rules: a known channel, a reason, `parse_eta`'s ETA forms)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.durations import format_duration, parse_eta
from continuity.errors import ContinuityError
from continuity.public.web import health_states
from continuity.variables import channel_name, human_datetime
from continuity.views import ATTENTION, report_view, status_view

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.public.web import Served

MAX_REASON = 500
# A campaign run's state as marketing reads it.
PHASES = {"registered": "upcoming", "briefed": "briefed", "live": "live", "ended": "ended",
          "cancelled": "cancelled"}


def staff_time(loaded: LoadedConfig, dt: datetime | str | None) -> str | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    org = loaded.config.organisation
    return human_datetime(dt, org.staff_lang, org.timezone)


def _decorate(loaded: LoadedConfig, sit: dict[str, Any]) -> dict[str, Any]:
    lang = loaded.config.organisation.staff_lang
    sit["channel_name"] = (channel_name(loaded, sit["channel"], lang) if sit["channel"] in loaded.config.channels
                           else sit["channel"])
    sit["opened_text"] = staff_time(loaded, sit["opened_at"])
    sit["eta_text"] = staff_time(loaded, sit["eta"])
    sit["closed_text"] = staff_time(loaded, sit["closed_at"])
    # Failing and uncertain steps first: they are what a person has to act on.
    sit["steps"].sort(key=lambda s: (s["state"] not in ATTENTION and not s["interrupted"], s["due_at"] or ""))
    for step in sit["steps"]:
        step["due_text"] = staff_time(loaded, step["due_at"])
        step["finished_text"] = staff_time(loaded, step["finished_at"])
    return sit


def dashboard_data(daemon: Served, now: datetime) -> dict[str, Any]:
    loaded = daemon.loaded
    view = status_view(daemon.store, now)
    health = health_states(daemon)
    lang = loaded.config.organisation.staff_lang
    open_by_channel: dict[str, list[str]] = {}
    situations = [_decorate(loaded, s) for s in view["open"]]
    for sit in situations:
        open_by_channel.setdefault(sit["channel"], []).append(sit["kind"])
    channels = []
    for key in loaded.config.channels:
        kinds = open_by_channel.get(key, [])
        state = "outage" if "outage" in kinds else (kinds[0] if kinds else (health.get(key) or "not checked"))
        channels.append({"key": key, "name": channel_name(loaded, key, lang), "state": state,
                         "health": health.get(key), **vantage_states(daemon, key, now)})
    situations.sort(key=lambda s: (not s["attention"], s["opened_at"]))
    lingering = [_decorate(loaded, s) for s in view["closed_with_pending_work"]]
    return {"channels": channels, "situations": situations, "lingering": lingering,
            "now_text": staff_time(loaded, now), "refresh_seconds": 30}


def vantage_states(daemon: Served, channel: str, now: datetime) -> dict[str, Any]:
    """What each vantage (a daemon node, a `continuity agent`) last saw of a channel watched from several,
    as `continuity status` shows it: silent, down, or its own reading; nothing for a channel seen from one."""
    none: dict[str, Any] = {"vantages": [], "quorum": None}
    quorum = (getattr(daemon, "quorums", None) or {}).get(channel)
    if quorum is None:
        return none
    seen = quorum.as_dict(now)
    if len(seen["vantages"]) < 2:
        return none
    rows = []
    for name, v in seen["vantages"].items():
        state = "silent" if v["silent"] else "down" if v["sees_down"] else (v["status"] or "waiting")
        rows.append({"name": name, "state": state, "reason": v["reason"] or "",
                     "at_text": staff_time(daemon.loaded, v["at"])})
    return {"vantages": rows, "quorum": seen["quorum"]}


def situation_data(daemon: Served, situation_id: int, now: datetime) -> dict[str, Any] | None:
    rep = report_view(daemon.store, situation_id, now)
    if rep is None:
        return None
    rep = _decorate(daemon.loaded, rep)
    for event in rep["timeline"]:
        event["at_text"] = staff_time(daemon.loaded, event["at"])
    return rep


def campaigns_data(daemon: Served, now: datetime) -> list[dict[str, Any]]:
    out = []
    for run in daemon.store.campaign_runs():
        out.append({"name": run.name, "run": run.run, "version": run.version, "phase": PHASES.get(run.state, run.state),
                    "starts_text": staff_time(daemon.loaded, run.starts_at),
                    "ends_text": staff_time(daemon.loaded, run.ends_at),
                    "situation_id": run.situation_id, "created_by": run.created_by})
    out.sort(key=lambda c: (c["phase"] in ("ended", "cancelled"), c["starts_text"] or ""))
    return out


# The declare form's own messages per console language (the ETA parser's stay the CLI's, in English).
MESSAGES = {
    "en": {"channel": "Choose one of the configured channels.",
           "reason": "Say what is wrong: staff read it in the runbook and the reminders.",
           "long": "At most {max} characters (this has {n}).",
           "past": "The ETA is in the past: give a later time, or leave it empty.",
           "cause": "Choose one of the prepared causes."},
    "hu": {"channel": "Válasszon a beállított csatornák közül.",
           "reason": "Írja le, mi a hiba: a munkatársak a teendőlistában és az emlékeztetőkben olvassák.",
           "long": "Legfeljebb {max} karakter (ez {n}).",
           "past": "A várható helyreállás a múltban van: adjon meg későbbi időt, vagy hagyja üresen.",
           "cause": "Válasszon az előre megírt okok közül."},
    "sk": {"channel": "Vyberte jeden z nastavených kanálov.",
           "reason": "Napíšte, čo nefunguje: kolegovia si to prečítajú v postupe aj v pripomienkach.",
           "long": "Najviac {max} znakov (tento text má {n}).",
           "past": "Predpokladaný čas obnovenia je v minulosti: zadajte neskorší čas alebo pole nechajte prázdne.",
           "cause": "Vyberte jednu z pripravených príčin."},
    "pl": {"channel": "Wybierz jeden ze skonfigurowanych kanałów.",
           "reason": "Opisz, co nie działa: zespół przeczyta to w instrukcji i w przypomnieniach.",
           "long": "Najwyżej {max} znaków (ten tekst ma {n}).",
           "past": "Przewidywany czas przywrócenia jest w przeszłości: podaj późniejszy czas albo zostaw pole puste.",
           "cause": "Wybierz jedną z przygotowanych przyczyn."},
}


def cause_choices(loaded: LoadedConfig, locale: str) -> list[dict[str, str]]:
    """The prepared causes (`continuity outage --cause`), each with the sentence customers read, in the
    console's language."""
    from continuity.variables import cause_catalog, cause_text

    return [{"key": key, "text": cause_text(loaded, key, locale)} for key in cause_catalog(loaded)]


def check_cause(loaded: LoadedConfig, form: dict[str, str], errors: dict[str, str], locale: str = "en"
                ) -> str | None:
    """The chosen cause key (None: not given, so an update keeps the one chosen before), or an error."""
    from continuity.variables import cause_catalog

    cause = form.get("cause", "").strip() or None
    if cause is not None and cause not in cause_catalog(loaded):
        errors["cause"] = MESSAGES.get(locale, MESSAGES["en"])["cause"]
        return None
    return cause


def check_declare(loaded: LoadedConfig, form: dict[str, str], now: datetime, locale: str = "en"
                  ) -> tuple[str, str, datetime | None, dict[str, str]]:
    """The declare form's fields, checked all at once: (channel, reason, eta, errors by field)."""
    text = MESSAGES.get(locale, MESSAGES["en"])
    errors: dict[str, str] = {}
    channel = form.get("channel", "").strip()
    if channel not in loaded.config.channels:
        errors["channel"] = text["channel"]
    reason = " ".join(form.get("reason", "").split())
    if not reason:
        errors["reason"] = text["reason"]
    elif len(reason) > MAX_REASON:
        errors["reason"] = text["long"].format(max=MAX_REASON, n=len(reason))
    eta = None
    try:
        eta = parse_eta(form.get("eta", "").strip() or None, now, loaded.config.organisation.timezone, option="ETA")
    except ContinuityError as exc:
        errors["eta"] = str(exc)
    if eta is not None and eta <= now:
        errors["eta"] = text["past"]
    return channel, reason, eta, errors


def preview_declare(daemon: Served, channel: str, *, reason: str, eta: datetime | None, by: str,
                    now: datetime, cause: str | None = None) -> dict[str, Any]:
    """What declaring would send, each text rendered in every locale its audience reads; touches nothing."""
    from continuity.samples import sample_situation
    from continuity.templating import TemplateCatalog
    from continuity.variables import DEFAULT_CAUSE, cause_key, cause_text, template_context

    loaded = daemon.loaded
    existing = daemon.store.find_open("outage", channel)
    playbook = loaded.playbook_for(channel)
    catalog = TemplateCatalog(loaded)
    # Without a choice, an update keeps the cause chosen before (as `continuity outage` does).
    key = cause or (cause_key(existing) if existing else DEFAULT_CAUSE)
    actions = []
    for group, step in playbook.all_steps():
        if group != "open":
            continue
        at = now + step.after
        sit = sample_situation(channel, now, reason=reason, eta=eta, by=by, playbook=playbook.name)
        sit.data = {"public_reason": False, "cause": key}
        texts = []
        for locale in catalog.locales_for(step.audience):
            ctx = template_context(loaded, sit, playbook, locale, at, step_id=step.id)
            rendered = catalog.render(step.template, locale, ctx)
            texts.append({"locale": locale, "text": (rendered.title + "\n" if rendered.title else "") + rendered.body})
        actions.append({"when": f"+{format_duration(step.after)}", "step": step.id, "action": step.action,
                        "to": step.to, "sinks": loaded.targets(step), "texts": texts})
    headline = (f"outage #{existing.id} of {channel} is already open: declaring updates its reason and ETA"
                if existing else f"a new outage of {channel}")
    # The cause as customers read it, in every language they are served in.
    causes = [{"locale": loc, "text": cause_text(loaded, key, loc)} for loc in loaded.config.organisation.locales]
    return {"headline": headline, "existing": existing.id if existing else None, "channel": channel,
            "actions": actions, "cause": key, "causes": causes}
