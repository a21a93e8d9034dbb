"""The phone announcement as TwiML (/voice.xml) and as plain text, from templates <locale>/public/voice.j2.

Callers hear every open public situation (the same ones the status page lists), in the organisation's default
language first and then in each other served language (or `daemon.public.voice_locales`, in that order).
Nothing open: an empty `<Response/>` — the provider plays nothing and goes on (or, with
`daemon.public.voice_next_url`, a `<Redirect>` to the usual call flow, which also follows every announcement).
Template output is plain text: whitespace is collapsed and everything is XML-escaped, so a reason typed with
`<` or `&` is read out, never parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from continuity.config.loader import LoadedConfig
from continuity.public.status import public_situations
from continuity.sinks.voice_text import spoken
from continuity.store.sqlite import SqliteStore
from continuity.templating import TemplateCatalog
from continuity.variables import template_context

VOICE_TEMPLATE = "public/voice"
# The speech language of each shipped locale (TwiML `language`): the accent callers expect.
SPEECH_LANGUAGES = {"en": "en-GB", "hu": "hu-HU", "sk": "sk-SK", "pl": "pl-PL"}


def speech_language(locale: str) -> str:
    if "-" in locale:
        return locale
    return SPEECH_LANGUAGES.get(locale, f"{locale}-{locale.upper()}")


def voice_locales(loaded: LoadedConfig) -> list[str]:
    public = loaded.config.daemon.public
    if public.voice_locales:
        return list(public.voice_locales)
    org = loaded.config.organisation
    return [org.default_locale, *(loc for loc in org.locales if loc != org.default_locale)]


def announcement(loaded: LoadedConfig, store: SqliteStore, now: datetime,
                 catalog: TemplateCatalog | None = None) -> list[tuple[str, list[str]]]:
    """(locale actually rendered, one text per open situation) for each announced language; [] when calm."""
    situations = public_situations(loaded, store, now)
    if not situations:
        return []
    catalog = catalog or TemplateCatalog(loaded)
    # The phone's own outage first: it is why most callers hear this at all.
    situations.sort(key=lambda s: (s.channel != "phone", s.opened_at))
    out: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for locale in voice_locales(loaded):
        texts, used = [], locale
        for sit in situations:
            playbook = loaded.playbooks.get(sit.playbook)
            rendered = catalog.render(VOICE_TEMPLATE, locale, template_context(loaded, sit, playbook, locale, now))
            used = rendered.locale
            texts.append(spoken(rendered.body))
        if used not in seen:  # a locale without its own template falls back; say that text once
            seen.add(used)
            out.append((used, [t for t in texts if t]))
    return out


def twiml(parts: list[tuple[str, list[str]]], next_url: str | None = None,
          voices: Mapping[str, str] | None = None) -> str:
    """A TwiML document: one <Say> per language and situation, a short pause between languages."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    body: list[str] = []
    for i, (locale, texts) in enumerate(parts):
        if i:
            body.append('  <Pause length="1"/>')
        attrs = f"language={quoteattr(speech_language(locale))}"
        if voices and locale in voices:
            attrs = f"voice={quoteattr(voices[locale])} {attrs}"
        body.extend(f"  <Say {attrs}>{escape(text)}</Say>" for text in texts)
    if next_url:
        body.append(f'  <Redirect method="POST">{escape(next_url)}</Redirect>')
    if body:
        lines += ["<Response>", *body, "</Response>"]
    else:
        lines.append("<Response/>")
    return "\n".join(lines) + "\n"
