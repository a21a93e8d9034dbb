"""Renders the console's pages from templates/<locale>/console/*.html.j2 with the project's sandboxed jinja2
and autoescaping (a reason typed during an outage or a sink's error text comes out as text, never markup).

The language is the person's choice (the language links set a cookie), else the staff locale, among the
languages that have console templates (English, Hungarian, Slovak and Polish are shipped)."""

from __future__ import annotations

from typing import Any

from continuity.config.loader import LoadedConfig
from continuity.templating import TemplateCatalog, make_environment

ROLE_NAMES = {"en": {"oncall": "on-call", "marketing": "marketing", "viewer": "viewer"},
              "hu": {"oncall": "ügyeletes", "marketing": "marketing", "viewer": "olvasó"},
              "sk": {"oncall": "pohotovosť", "marketing": "marketing", "viewer": "len na čítanie"},
              "pl": {"oncall": "dyżurny", "marketing": "marketing", "viewer": "tylko odczyt"}}
# Channel states, vantage readings and campaign phases as each language says them (the CSS keys stay English).
STATE_NAMES = {
    "hu": {"up": "működik", "down": "nem működik", "degraded": "akadozik", "unknown": "ismeretlen",
           "not checked": "nincs ellenőrizve", "outage": "üzemzavar", "surge": "csúcsidőszak",
           "maintenance": "karbantartás", "silent": "néma", "waiting": "várakozik", "upcoming": "közelgő",
           "briefed": "tájékoztatva", "live": "fut", "ended": "véget ért", "cancelled": "törölve"},
    "sk": {"up": "funguje", "down": "nefunguje", "degraded": "obmedzene", "unknown": "neznámy",
           "not checked": "nekontrolované", "outage": "výpadok", "surge": "nárast dopytu", "maintenance": "údržba",
           "silent": "mlčí", "waiting": "čaká sa", "upcoming": "pripravovaná", "briefed": "kolegovia informovaní",
           "live": "prebieha", "ended": "skončená", "cancelled": "zrušená"},
    "pl": {"up": "działa", "down": "nie działa", "degraded": "działa z zakłóceniami", "unknown": "nieznany",
           "not checked": "niesprawdzony", "outage": "awaria", "surge": "wzmożony ruch",
           "maintenance": "prace serwisowe", "silent": "milczy", "waiting": "oczekiwanie",
           "upcoming": "nadchodząca", "briefed": "zespół poinformowany", "live": "trwa", "ended": "zakończona",
           "cancelled": "anulowana"},
}
LANGUAGE_NAMES = {"en": "English", "hu": "Magyar", "sk": "Slovenčina", "pl": "Polski"}


class Pages:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.catalog = TemplateCatalog(loaded)
        self.env = make_environment(loaded.template_dirs, autoescape=True)
        self.locales = [loc for loc in dict.fromkeys([loaded.config.organisation.staff_lang, "en", "hu", "sk", "pl",
                                                      *loaded.config.organisation.locales])
                        if any((d / loc / "console" / "base.html.j2").is_file() for d in loaded.template_dirs)]
        self.default = self.locales[0] if self.locales else "en"

    def pick(self, wanted: str | None) -> str:
        return wanted if wanted in self.locales else self.default

    def find(self, name: str, locale: str) -> str:
        rel = self.catalog.find(f"console/{name}", locale)
        if rel is None:
            raise LookupError(f"template console/{name}.j2 not found for locale {locale!r}")
        return rel

    def render(self, name: str, locale: str, here: str = "/console/", **data: Any) -> str:
        languages = [{"code": loc, "name": LANGUAGE_NAMES.get(loc, loc), "current": loc == locale}
                     for loc in self.locales]
        return self.env.get_template(self.find(name, locale)).render(
            **data, layout=self.find("base.html", locale), part=lambda other: self.find(other, locale),
            lang=locale, languages=languages, here=here,
            organisation=self.loaded.config.organisation.name, role_names=ROLE_NAMES.get(locale, ROLE_NAMES["en"]),
            state_names=STATE_NAMES.get(locale, {}))
