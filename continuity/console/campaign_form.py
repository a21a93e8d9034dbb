"""The console's "Register campaign" form: its fields turned into the data a campaign file holds, checked by
the same model and the same checks as `campaign register FILE`, with every error keyed by the form field it
is about (shown next to it, all at once).

Title defaults to the name and the time zone to the organisation's. FAQ entries and template answers per
locale are rows: a few empty ones, "Add" buttons that send the form back with one more (no script needed),
and a "Remove" box on each. Editing stores a new version with the fields the person changed; per-locale texts
they did not touch are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from continuity.config.yamlsrc import Document, Path_
from continuity.errors import ContinuityError, InputError, InputErrors, Location

if TYPE_CHECKING:
    from continuity.campaigns.model import Campaign
    from continuity.engine import Engine

FIELDS = ("name", "title", "starts", "ends", "timezone", "owner", "terms", "channels", "codes", "faq_url", "load")
LABELS = {"name": "Name", "title": "Title", "starts": "Starts", "ends": "Ends", "timezone": "Time zone",
          "owner": "Owner", "terms": "Terms", "channels": "Channels", "codes": "Discount codes",
          "faq_url": "FAQ page", "load": "Expected load", "faq": "FAQ entries", "answers": "Template answers",
          "form": "Campaign"}
# The labels per console language, for the error summary (the model's messages stay the CLI's, in English).
LOCAL_LABELS = {
    "en": LABELS,
    "hu": {"name": "Név", "title": "Cím", "starts": "Kezdés", "ends": "Befejezés", "timezone": "Időzóna",
           "owner": "Felelős", "terms": "Feltételek", "channels": "Csatornák", "codes": "Kedvezménykódok",
           "faq_url": "GYIK oldal", "load": "Várható terhelés", "faq": "GYIK-bejegyzések",
           "answers": "Válaszsablonok", "form": "Kampány"},
    "sk": {"name": "Názov", "title": "Titulok", "starts": "Začiatok", "ends": "Koniec", "timezone": "Časové pásmo",
           "owner": "Zodpovedná osoba", "terms": "Podmienky", "channels": "Kanály", "codes": "Zľavové kódy",
           "faq_url": "Stránka s FAQ", "load": "Očakávané zaťaženie", "faq": "Otázky a odpovede (FAQ)",
           "answers": "Šablóny odpovedí", "form": "Kampaň"},
    "pl": {"name": "Nazwa", "title": "Tytuł", "starts": "Początek", "ends": "Koniec", "timezone": "Strefa czasowa",
           "owner": "Osoba odpowiedzialna", "terms": "Warunki", "channels": "Kanały", "codes": "Kody rabatowe",
           "faq_url": "Strona FAQ", "load": "Spodziewane obciążenie", "faq": "Pytania i odpowiedzi (FAQ)",
           "answers": "Szablony odpowiedzi", "form": "Kampania"},
}
ROW_LABELS = {
    "en": {"faq": "FAQ entry {n}", "answer": "Template answer {n}", "q": "question", "a": "answer",
           "locale": "language", "name": "name", "vars": "variables", "text": "text"},
    "hu": {"faq": "{n}. GYIK-bejegyzés", "answer": "{n}. válaszsablon", "q": "kérdés", "a": "válasz",
           "locale": "nyelv", "name": "név", "vars": "változók", "text": "szöveg"},
    "sk": {"faq": "Otázka FAQ č. {n}", "answer": "Šablóna odpovede č. {n}", "q": "otázka", "a": "odpoveď",
           "locale": "jazyk", "name": "názov", "vars": "premenné", "text": "text"},
    "pl": {"faq": "Pytanie FAQ nr {n}", "answer": "Szablon odpowiedzi nr {n}", "q": "pytanie", "a": "odpowiedź",
           "locale": "język", "name": "nazwa", "vars": "zmienne", "text": "tekst"},
}


# The form's own messages (the model's and the checks' stay the CLI's, in English).
MESSAGES = {
    "en": {"when": "Required: the date and time.", "both": "Required: both the question and the answer.",
           "answer_name": "Required: a short name agents pick it by, e.g. code-not-working.",
           "twice": "{name!r} is the name of another answer too.",
           "text": "Required: the answer in {loc} (agents answer in each).", "locale": "Choose one of {locales}.",
           "code": "{line!r}: expected CODE=what it gives, e.g. SPRING10=10% off everything",
           "tz": "{tz!r} is not a time zone; use an IANA name like Europe/Budapest", "required": "Required."},
    "hu": {"when": "Kötelező: a dátum és az idő.", "both": "Kötelező: a kérdés és a válasz is.",
           "answer_name": "Kötelező: egy rövid név, amelyről a munkatársak kiválasztják, pl. kod-nem-mukodik.",
           "twice": "{name!r} egy másik válaszsablon neve is.",
           "text": "Kötelező: a válasz ezen a nyelven: {loc} (a munkatársak minden nyelven válaszolnak).",
           "locale": "Válasszon ezek közül: {locales}.",
           "code": "{line!r}: KÓD=mit ad formában, pl. TAVASZ10=10% kedvezmény mindenre",
           "tz": "{tz!r} nem időzóna; adjon meg IANA-nevet, pl. Europe/Budapest", "required": "Kötelező."},
    "sk": {"when": "Povinné: dátum a čas.", "both": "Povinné: otázka aj odpoveď.",
           "answer_name": "Povinné: krátky názov, podľa ktorého ju kolegovia vyberú, napr. kod-nefunguje.",
           "twice": "{name!r} je aj názov inej šablóny odpovede.",
           "text": "Povinné: odpoveď v jazyku {loc} (kolegovia odpovedajú v každom).",
           "locale": "Vyberte jeden z jazykov: {locales}.",
           "code": "{line!r}: zadajte v tvare KÓD=čo poskytuje, napr. JAR10=10 % zľava na všetko",
           "tz": "{tz!r} nie je časové pásmo; zadajte názov podľa IANA, napr. Europe/Bratislava",
           "required": "Povinné."},
    "pl": {"when": "Wymagane: data i godzina.", "both": "Wymagane: zarówno pytanie, jak i odpowiedź.",
           "answer_name": "Wymagane: krótka nazwa, po której zespół go wybiera, np. kod-nie-dziala.",
           "twice": "{name!r} to także nazwa innego szablonu odpowiedzi.",
           "text": "Wymagane: odpowiedź w języku {loc} (zespół odpowiada w każdym).",
           "locale": "Wybierz jeden z języków: {locales}.",
           "code": "{line!r}: wpisz w postaci KOD=co daje, np. WIOSNA10=10% rabatu na wszystko",
           "tz": "{tz!r} to nie strefa czasowa; podaj nazwę według IANA, np. Europe/Warsaw",
           "required": "Wymagane."},
}


def _say(locale: str, key: str, **values: str) -> str:
    return MESSAGES.get(locale, MESSAGES["en"])[key].format(**values)


def label_of(key: str, locale: str) -> str:
    """The name of a form field as the error summary shows it: `FAQ entry 2, question`, `Terms`."""
    labels = LOCAL_LABELS.get(locale, LABELS)
    m = _ROW.match(key)
    if not m:
        return labels.get(key, key)
    words = ROW_LABELS.get(locale, ROW_LABELS["en"])
    part = key[m.end():]
    what = words.get(part.split("-")[0], part)
    if part.startswith("text-"):
        what = f"{what} ({part[5:]})"
    return f"{words[m[1]].format(n=int(m[2]) + 1)}, {what}"


# Campaign field → form field; anything else (lead, brief, recurrence from an uploaded file) is the form's.
FIELD_OF = {"name": "name", "title": "title", "start": "starts", "end": "ends", "owner": "owner", "terms": "terms",
            "channels": "channels", "codes": "codes", "faq_url": "faq_url", "load": "load"}
EMPTY_ROWS = 1  # blank FAQ and answer rows offered below the filled ones
_ROW = re.compile(r"^(faq|answer)-(\d{1,3})-")


@dataclass
class Row:
    """One FAQ entry or template answer of the form, with its number there (its fields' ids)."""

    n: int
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)


@dataclass
class FormDocument(Document):
    """A Document whose locations are the form's field ids: `faq.hu[1].q` is the question of its row."""

    faq_rows: dict[tuple[str, int], int] = field(default_factory=dict)
    answer_rows: dict[str, int] = field(default_factory=dict)

    def loc(self, path: Path_) -> Location:
        return Location("form", None, field_of(path, self.faq_rows, self.answer_rows))


def field_of(path: Path_, faq_rows: Mapping[tuple[str, int], int], answer_rows: Mapping[str, int]) -> str:
    if not path:
        return "form"
    head = str(path[0])
    if head == "faq":
        if len(path) >= 4 and (str(path[1]), path[2]) in faq_rows and path[3] in ("q", "a"):
            return f"faq-{faq_rows[(str(path[1]), int(path[2]))]}-{path[3]}"
        if len(path) >= 3 and (str(path[1]), path[2]) in faq_rows:
            return f"faq-{faq_rows[(str(path[1]), int(path[2]))]}-q"
        return "faq"
    if head == "answers":
        row = answer_rows.get(str(path[1])) if len(path) > 1 else None
        if row is None:
            return "answers"
        if len(path) >= 4 and path[2] == "text":
            return f"answer-{row}-text-{path[3]}"
        if len(path) == 3 and path[2] == "text":
            return f"answer-{row}-text"
        if len(path) >= 3 and path[2] == "vars":
            return f"answer-{row}-vars"
        return f"answer-{row}-name"
    return FIELD_OF.get(head, "form")


def rows(form: Mapping[str, str], kind: str) -> list[Row]:
    """The form's rows of a kind in their order, without those marked for removal."""
    found: dict[int, Row] = {}
    for key, value in form.items():
        m = _ROW.match(key)
        if m and m[1] == kind:
            n = int(m[2])
            found.setdefault(n, Row(n)).values[key[m.end():]] = value
    return [r for _, r in sorted(found.items()) if not r.get("remove")]


def shown_rows(form: Mapping[str, str], kind: str, *, add: bool = False) -> list[Row]:
    """The rows to show: the filled ones, renumbered, then the empty ones: one, or after "Add" one more than
    the form had."""
    found = rows(form, kind)
    keep = [r for r in found if _filled(r)]
    blank = len(found) - len(keep) + 1 if add else EMPTY_ROWS
    out = [Row(i, r.values) for i, r in enumerate(keep)]
    return out + [Row(len(out) + i) for i in range(blank)]


def _filled(row: Row) -> bool:
    return any(v.strip() for k, v in row.values.items() if k not in ("locale", "remove"))


def renumbered(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, str]:
    """The form's rows as `shown_rows` numbers them, so a re-shown form keeps each error at its row."""
    out = {k: v for k, v in form.items() if not _ROW.match(k)}
    moved = dict(errors)
    for kind in ("faq", "answer"):
        for i, r in enumerate(r for r in rows(form, kind) if _filled(r)):
            for key, value in r.values.items():
                out[f"{kind}-{i}-{key}"] = value
            for key in list(errors):
                if key.startswith(f"{kind}-{r.n}-") and i != r.n:
                    moved[f"{kind}-{i}-" + key[len(f"{kind}-{r.n}-"):]] = moved.pop(key)
    errors.clear()
    errors.update(moved)
    return out


def _moment(value: str, tz: str) -> str | None:
    """A datetime-local value ("2026-12-01T08:00") in the chosen zone, as the campaign format writes it."""
    value = value.strip()
    if not value:
        return None
    if value.endswith("Z") or "+" in value[10:] or value[10:].count("-") or " " in value[11:]:
        return value  # already carries its offset or zone
    return f"{value.replace('T', ' ', 1)} {tz}"


def _text(value: object, locale: str) -> str:
    """A campaign text as one line of the form: itself, or the default locale's entry of a per-locale text."""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def prefill(engine: Engine, snapshot: dict[str, Any]) -> dict[str, str]:
    """The edit form's fields and rows from a stored version, in the organisation's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    org = engine.loaded.config.organisation

    def local(value: object) -> str:
        return datetime.fromisoformat(str(value)).astimezone(ZoneInfo(org.timezone)).strftime("%Y-%m-%dT%H:%M")

    codes = snapshot.get("codes") or []
    out = {"name": str(snapshot["name"]), "title": _text(snapshot.get("title"), org.default_locale),
           "starts": local(snapshot["start"]), "ends": local(snapshot["end"]), "timezone": org.timezone,
           "owner": str(snapshot.get("owner") or ""), "terms": _text(snapshot.get("terms"), org.default_locale),
           "channels": " ".join(str(c) for c in snapshot.get("channels") or []),
           "codes": "\n".join(f"{c['code']}={_text(c.get('discount'), org.default_locale)}" for c in codes
                              if isinstance(c, dict)),
           "faq_url": _text(snapshot.get("faq_url"), org.default_locale), "load": str(snapshot.get("load") or "")}
    n = 0
    for loc, items in (snapshot.get("faq") or {}).items():
        for item in items:
            out.update({f"faq-{n}-locale": loc, f"faq-{n}-q": item["q"], f"faq-{n}-a": item["a"]})
            n += 1
    for n, (name, ans) in enumerate((snapshot.get("answers") or {}).items()):
        out.update({f"answer-{n}-name": name, f"answer-{n}-vars": " ".join(ans.get("vars") or [])})
        out.update({f"answer-{n}-text-{loc}": text for loc, text in (ans.get("text") or {}).items()})
    return out


def _codes(text: str, errors: dict[str, str], locale: str) -> list[dict[str, str]]:
    out = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        code, sep, description = line.partition("=")
        if not sep or not code.strip() or not description.strip():
            _add(errors, "codes", _say(locale, "code", line=line))
            continue
        out.append({"code": code.strip(), "discount": description.strip()})
    return out


def _add(errors: dict[str, str], key: str, message: str) -> None:
    errors[key] = f"{errors[key]}; {message}" if key in errors else message


def build(engine: Engine, form: Mapping[str, str], snapshot: Mapping[str, Any] | None, locale: str = "en"
          ) -> tuple[dict[str, Any], FormDocument, dict[str, str]]:
    """The campaign data the form describes (over the stored version when editing), its Document, and the
    errors found before the model sees it (an unknown time zone, a half-filled row)."""
    org = engine.loaded.config.organisation
    served = list(org.locales)
    errors: dict[str, str] = {}
    tz = form.get("timezone", "").strip() or org.timezone
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        errors["timezone"] = _say(locale, "tz", tz=tz)
        tz = org.timezone
    before = prefill(engine, dict(snapshot)) if snapshot is not None else {}
    data: dict[str, Any] = dict(snapshot or {})

    def changed(key: str) -> bool:
        """A new campaign, or a field the person changed (an unchanged one keeps its stored value, per-locale
        texts and a code's conditions included)."""
        return snapshot is None or form.get(key, "").strip() != before.get(key, "")

    name = form.get("name", "").strip()
    if snapshot is None:
        data["name"] = name or None
    if changed("title"):
        data["title"] = form.get("title", "").strip() or data.get("name")
    moved = changed("starts") or changed("ends") or changed("timezone")
    for key, target in (("starts", "start"), ("ends", "end")):
        value = _moment(form.get(key, ""), tz)
        if value is None:
            errors[key] = _say(locale, "when")
        elif moved:
            data[target] = value
    for key in ("owner", "terms", "faq_url", "load"):
        if changed(key):
            value = form.get(key, "").strip()
            if value:
                data[key] = value
            else:
                data.pop(key, None)
    if changed("channels"):
        data["channels"] = [c for c in form.get("channels", "").replace(",", " ").split() if c]
    if changed("codes"):
        data["codes"] = _codes(form.get("codes", ""), errors, locale)

    doc = FormDocument("form", None)
    faq: dict[str, list[dict[str, str]]] = {}
    for row in rows(form, "faq"):
        if not _filled(row):
            continue
        loc = row.get("locale") or org.default_locale
        if loc not in served:
            errors[f"faq-{row.n}-locale"] = _say(locale, "locale", locales=", ".join(served))
            continue
        half = [part for part in ("q", "a") if not row.get(part).strip()]
        for part in half:
            errors[f"faq-{row.n}-{part}"] = _say(locale, "both")
        if half:
            continue  # left out, so the later checks still run and speak up in the same answer
        doc.faq_rows[(loc, len(faq.get(loc, [])))] = row.n
        faq.setdefault(loc, []).append({"q": row.get("q").strip(), "a": row.get("a").strip()})
    data["faq"] = faq
    answers: dict[str, dict[str, Any]] = {}
    for row in rows(form, "answer"):
        if not _filled(row):
            continue
        key = row.get("name").strip()
        if not key:
            errors[f"answer-{row.n}-name"] = _say(locale, "answer_name")
            continue
        if key in answers:
            errors[f"answer-{row.n}-name"] = _say(locale, "twice", name=key)
            continue
        for loc in served:
            if not row.get(f"text-{loc}").strip():
                errors[f"answer-{row.n}-text-{loc}"] = _say(locale, "text", loc=loc)
        doc.answer_rows[key] = row.n
        answers[key] = {"vars": row.get("vars").replace(",", " ").split(),
                        "text": {loc: row.get(f"text-{loc}").strip() for loc in served
                                 if row.get(f"text-{loc}").strip()}}
    data["answers"] = answers
    doc.data = {k: v for k, v in data.items() if v is not None}
    return doc.data, doc, errors


def validated(engine: Engine, form: Mapping[str, str], snapshot: Mapping[str, Any] | None, locale: str = "en"
              ) -> tuple[Campaign | None, FormDocument, dict[str, str]]:
    """The form's campaign through the model (None when the model refuses it) and every error so far, keyed
    by field: a campaign with errors of the form's own still goes through the later checks, so one submit
    names every mistake."""
    from pydantic import ValidationError

    from continuity.campaigns.model import Campaign
    from continuity.config.loader import validation_errors

    data, doc, errors = build(engine, form, snapshot, locale)
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        collect(errors, InputErrors(validation_errors(doc, exc)), locale)
        return None, doc, errors
    return campaign, doc, errors


def collect(errors: dict[str, str], exc: ContinuityError, locale: str = "en") -> None:
    """Each error of exc at the form field it names (a missing field says "Required.")."""
    for e in exc.errors if isinstance(exc, InputErrors) else [exc]:
        key = (e.location.field or "form") if isinstance(e, InputError) and e.location else "form"
        if re.fullmatch(r"answer-\d+-text", key):
            continue  # a text missing in a locale: already said at that locale's field
        if key in errors and errors[key].startswith(_say(locale, "required")[:-1]):
            continue  # already said: required
        message = _say(locale, "required") if e.message == "required field is missing" else e.message
        _add(errors, key, message)


def check_only(engine: Engine, form: Mapping[str, str], editing: str | None, locale: str = "en"
               ) -> tuple[Campaign | None, dict[str, str], list[str]]:
    """Every check of register (or update) without storing anything: (campaign, errors, warnings)."""
    from continuity.campaigns.load import load_checked
    from continuity.campaigns.phases import find_run

    snapshot, run = None, None
    if editing is not None:
        run = find_run(engine, editing)
        snapshot = _snapshot(engine, run.name, run.version)
    campaign, doc, errors = validated(engine, form, snapshot, locale)
    if campaign is None:
        return None, errors, []
    try:
        checked = load_checked(engine, (campaign, doc), replacing=run)
    except ContinuityError as exc:
        collect(errors, exc, locale)
        return None, errors, []
    if errors:
        return None, errors, []
    return checked.campaign, {}, checked.warnings


def _snapshot(engine: Engine, name: str, version: int) -> dict[str, Any]:
    found = engine.store.get_campaign_version(name, version)
    assert found is not None
    return dict(found.snapshot)


def register_from_form(engine: Engine, form: Mapping[str, str], *, by: str, editing: str | None = None,
                       locale: str = "en") -> tuple[str | None, dict[str, str], list[str]]:
    """Register the campaign the form describes, or with `editing` store a new version of that campaign:
    (its name, {}, warnings), or (None, errors by field, [])."""
    from continuity.campaigns.phases import advance, find_run, register, update

    snapshot = None
    if editing is not None:
        run = find_run(engine, editing)
        snapshot = _snapshot(engine, run.name, run.version)
    campaign, doc, errors = validated(engine, form, snapshot, locale)
    if campaign is None:
        return None, errors, []
    if errors:  # what else register would refuse, so every mistake shows at once
        return None, check_only(engine, form, editing, locale)[1], []
    try:
        result = (update(engine, editing, (campaign, doc), by=by) if editing is not None
                  else register(engine, (campaign, doc), by=by))
    except ContinuityError as exc:
        collect(errors, exc, locale)
        return None, errors, []
    advance(engine, result.run.name)
    return result.run.name, {}, list(result.warnings)


def blank(engine: Engine) -> dict[str, Any]:
    return {"timezone": engine.loaded.config.organisation.timezone}
