"""Load the config file and everything it points at, and check every cross-reference.

All problems found in one pass are reported together, each as `file:line field: message`. Nothing here
touches the store, so a bad config changes no state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from continuity.config.envrefs import EnvRefError, resolve_refs
from continuity.config.models import Config, Playbook, StepSpec
from continuity.config.yamlsrc import Document, Path_, load_yaml_file
from continuity.errors import InputError, InputErrors
from continuity.probes import PROBES, probe_class
from continuity.probes.base import Probe, ProbeSettings
from continuity.shipped import shipped_dir
from continuity.sinks import SINKS, sink_class
from continuity.sinks.base import Sink, SinkSettings

BUILTIN_ROUTES = ("staff", "customers", "website", "social", "autoreply")
# Routes that reach nothing until configured: the phone announcement only makes sense with a PBX behind it.
QUIET_ROUTES = ("announcement",)
DEFAULT_SINK = "outbox"
# Campaign files (`campaign-*.yaml`, e.g. the shipped example) may sit beside the playbooks; they are not playbooks.
CAMPAIGN_FILE_PREFIX = "campaign-"


@dataclass(frozen=True)
class SinkInstance:
    name: str
    cls: type[Sink]
    settings: SinkSettings


@dataclass(frozen=True)
class ProbeInstance:
    channel: str
    index: int
    cls: type[Probe]
    settings: ProbeSettings


@dataclass
class LoadedConfig:
    """A validated config with its playbooks resolved per channel and its sinks' settings checked."""

    path: Path
    config: Config
    sinks: dict[str, SinkInstance]
    routes: dict[str, list[str]]
    playbook_dirs: list[Path]
    template_dirs: list[Path]
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    channel_playbooks: dict[str, Playbook] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    probes: dict[str, list[ProbeInstance]] = field(default_factory=dict)
    surge_probes: dict[str, list[ProbeInstance]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def store_url(self) -> str:
        return self.config.store.url

    def targets(self, step: StepSpec) -> list[str]:
        """The sink instances a step lands on: its route's sinks, or the sink it names directly."""
        if step.to in self.routes:
            return list(self.routes[step.to])
        return [step.to]

    def playbook_for(self, channel: str) -> Playbook:
        return self.channel_playbooks[channel]


def validation_errors(doc: Document, exc: ValidationError, prefix: Path_ = ()) -> list[InputError]:
    out = []
    for err in exc.errors(include_url=False):
        path = (*prefix, *err["loc"])
        if err["type"] == "env_ref_required" and "field" in err.get("ctx", {}):
            path = (*path, err["ctx"]["field"])  # the header's own line, not its mapping's
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; unknown keys are not allowed)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(doc.error(path, msg))
    return out


def _resolve_env(doc: Document, value: Any, path: Path_, errors: list[InputError], env: Mapping[str, str]) -> Any:
    if isinstance(value, str) and "${" in value:
        try:
            return resolve_refs(value, env, doc_dir(doc))
        except EnvRefError as exc:
            errors.append(doc.error(path, str(exc)))
            return value
    if isinstance(value, dict):
        return {k: _resolve_env(doc, v, (*path, k), errors, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(doc, v, (*path, i), errors, env) for i, v in enumerate(value)]
    return value


def doc_dir(doc: Document) -> Path:
    return Path(doc.file).parent


def _search(dirs: list[Path], relative: str) -> Path | None:
    for d in dirs:
        candidate = d / relative
        if candidate.is_file():
            return candidate
    return None


def load_playbook(name: str, dirs: list[Path]) -> tuple[Playbook, Document]:
    found = _search(dirs, f"{name}.yaml")
    if found is None:
        raise InputError(f"playbook {name!r} not found in {', '.join(str(d) for d in dirs)}")
    doc = load_yaml_file(found)
    if not isinstance(doc.data, dict):
        raise doc.error((), "a playbook must be a YAML mapping (name, kind, steps, …)")
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        raise InputErrors(validation_errors(doc, exc)) from None
    if playbook.name != name:
        raise doc.error(("name",), f"name {playbook.name!r} must match the file name {name!r}")
    return playbook, doc


def _apply_channel(playbook: Playbook, channel: str, cfg: Config, doc: Document, errors: list[InputError]) -> Playbook:
    spec = cfg.channels[channel]
    ids = {s.id for _, s in playbook.all_steps()}
    for step_id in spec.override:
        if step_id not in ids:
            errors.append(
                doc.error(("channels", channel, "override", step_id),
                          f"playbook {playbook.name!r} has no step {step_id!r}")
            )

    # A disabled step never goes out, so the steps that only follow it (`only_if`) go with it: the X update
    # and "resolved" posts leave with the X post.
    disabled = {step_id for step_id, o in spec.override.items() if o.disabled}
    grew = True
    while grew:
        follow = {s.id for _, s in playbook.all_steps() if s.only_if in disabled} - disabled
        disabled |= follow
        grew = bool(follow)

    def patched(steps: list[StepSpec]) -> list[StepSpec]:
        out = []
        for s in steps:
            if s.id in disabled:
                continue
            o = spec.override.get(s.id)
            if o is None:
                out.append(s)
                continue
            changes = {k: v for k, v in o.model_dump(exclude={"disabled"}).items() if v is not None}
            out.append(s.model_copy(update=changes))
        return out

    if not (spec.override or spec.add_steps or spec.add_on_close):
        return playbook
    return playbook.model_copy(
        update={
            "steps": patched(playbook.steps) + list(spec.add_steps),
            "on_update": patched(playbook.on_update),
            "on_close": patched(playbook.on_close) + list(spec.add_on_close),
        }
    )


def default_playbook_name(channel: str, dirs: list[Path]) -> str:
    own = f"outage-{channel}"
    return own if _search(dirs, f"{own}.yaml") else "outage-generic"


def _check_probes(cfg: Config, doc: Document, errors: list[InputError]) -> dict[str, list[ProbeInstance]]:
    out: dict[str, list[ProbeInstance]] = {}
    for ch_name, ch in cfg.channels.items():
        if ch.health is None:
            continue
        for i, spec in enumerate(ch.health.probes):
            where = ("channels", ch_name, "health", "probes", i)
            if spec.type not in PROBES:
                errors.append(doc.error((*where, "type"),
                                        f"unknown probe type {spec.type!r}; expected one of: {', '.join(PROBES)}"))
                continue
            if spec.type == "volume":
                errors.append(doc.error((*where, "type"), "a volume probe measures load, not health: put it "
                                        f"under channels.{ch_name}.surge.probes"))
                continue
            cls = probe_class(spec.type)
            try:
                settings = cls.Settings.model_validate(spec.settings_data())
            except ValidationError as exc:
                errors.extend(validation_errors(doc, exc, where))
                continue
            out.setdefault(ch_name, []).append(ProbeInstance(ch_name, i, cls, settings))
    return out


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Parse, validate and cross-check a config file; raise InputError(s) naming file, line and field."""
    env = os.environ if environ is None else environ
    path = Path(path)
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "the config must be a YAML mapping with organisation, channels, sinks, …")
    errors: list[InputError] = []
    data = _resolve_env(doc, doc.data, (), errors, env)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise InputErrors(errors + validation_errors(doc, exc)) from None
    if errors:
        raise InputErrors(errors)

    base = path.resolve().parent
    sinks: dict[str, SinkInstance] = {}
    for name, spec in cfg.sinks.items():
        if spec.type not in SINKS:
            errors.append(
                doc.error(("sinks", name, "type"),
                          f"unknown sink type {spec.type!r}; expected one of: {', '.join(SINKS)}")
            )
            continue
        cls = sink_class(spec.type)
        try:
            settings = cls.Settings.model_validate(spec.settings_data())
        except ValidationError as exc:
            errors.extend(validation_errors(doc, exc, ("sinks", name)))
            continue
        sinks[name] = SinkInstance(name, cls, settings)
    if DEFAULT_SINK not in cfg.sinks:
        cls = sink_class("outbox")
        settings = cls.Settings.model_validate({"directory": cfg.paths.outbox})
        sinks[DEFAULT_SINK] = SinkInstance(DEFAULT_SINK, cls, settings)

    routes: dict[str, list[str]] = {r: [DEFAULT_SINK] for r in BUILTIN_ROUTES}
    routes.update({r: [] for r in QUIET_ROUTES})
    for route, names in cfg.routes.items():
        for i, sink_name in enumerate(names):
            if sink_name not in sinks and sink_name not in cfg.sinks:
                errors.append(doc.error(("routes", route, i), f"unknown sink {sink_name!r}"))
        routes[route] = list(names)

    for ch_name, ch in cfg.channels.items():
        for i, fb in enumerate(ch.fallbacks):
            if fb.channel not in cfg.channels:
                errors.append(doc.error(("channels", ch_name, "fallbacks", i), f"unknown channel {fb.channel!r}"))
            elif fb.channel == ch_name:
                errors.append(doc.error(("channels", ch_name, "fallbacks", i), "a channel cannot be its own fallback"))
    public = cfg.daemon.public
    for i, ch_name in enumerate(public.channels or []):
        if ch_name not in cfg.channels:
            errors.append(doc.error(("daemon", "public", "channels", i), f"unknown channel {ch_name!r}"))
    for i, locale in enumerate(public.voice_locales or []):
        if locale not in cfg.organisation.locales:
            errors.append(doc.error(("daemon", "public", "voice_locales", i),
                                    f"{locale!r} is not one of organisation.locales {cfg.organisation.locales}"))

    probes = _check_probes(cfg, doc, errors)
    playbook_dirs = [base / p for p in cfg.paths.playbooks] + [shipped_dir("playbooks")]
    template_dirs = [base / p for p in cfg.paths.templates] + [shipped_dir("templates")]
    loaded = LoadedConfig(path, cfg, sinks, routes, playbook_dirs, template_dirs)
    loaded.documents[""] = doc
    loaded.probes = probes

    for ch_name, ch in cfg.channels.items():
        name = ch.playbook or default_playbook_name(ch_name, playbook_dirs)
        try:
            if name not in loaded.playbooks:
                loaded.playbooks[name], loaded.documents[name] = load_playbook(name, playbook_dirs)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            if exc.location is None:
                exc = doc.error(("channels", ch_name, "playbook"), exc.message)
            errors.append(exc)
            continue
        loaded.channel_playbooks[ch_name] = _apply_channel(loaded.playbooks[name], ch_name, cfg, doc, errors)
    extra = _check_degraded_playbooks(loaded, doc, errors)
    extra += _check_surge(loaded, doc, errors)
    errors.extend(check_steps(loaded))
    errors.extend(check_steps(loaded, extra))
    if errors:
        raise InputErrors(errors)
    return loaded


def _check_degraded_playbooks(loaded: LoadedConfig, doc: Document,
                              errors: list[InputError]) -> list[tuple[str, Playbook]]:
    """Each `health.degraded_playbook` exists and is of kind `degraded`; returns them for the step checks."""
    pairs: list[tuple[str, Playbook]] = []
    for ch_name, ch in loaded.config.channels.items():
        name = ch.health.degraded_playbook if ch.health is not None else None
        if name is None:
            continue
        playbook = _playbook_of_kind(loaded, doc, ("channels", ch_name, "health", "degraded_playbook"), name,
                                     "degraded", "a degraded_playbook", errors)
        if playbook is not None:
            pairs.append((ch_name, playbook))
    return pairs


def _playbook_of_kind(loaded: LoadedConfig, doc: Document, where: Path_, name: str, kind: str, what: str,
                      errors: list[InputError]) -> Playbook | None:
    """The playbook a config field names, loaded once into `loaded`; None (and an error at `where`) when it is
    missing, broken or of another kind."""
    try:
        if name not in loaded.playbooks:
            loaded.playbooks[name], loaded.documents[name] = load_playbook(name, loaded.playbook_dirs)
    except InputErrors as exc:
        errors.extend(exc.errors)
        return None
    except InputError as exc:
        errors.append(doc.error(where, exc.message) if exc.location is None else exc)
        return None
    playbook = loaded.playbooks[name]
    if playbook.kind != kind:
        errors.append(doc.error(where, f"playbook {name!r} is of kind {playbook.kind!r}; {what} must be of kind "
                                       f"{kind!r}"))
        return None
    return playbook


def _check_surge(loaded: LoadedConfig, doc: Document, errors: list[InputError]) -> list[tuple[str, Playbook]]:
    """Each `surge:` block: volume probes only (with a threshold of their own or the block's), and a
    playbook of kind `surge`; fills loaded.surge_probes and returns the playbooks for the step checks."""
    pairs: list[tuple[str, Playbook]] = []
    for ch_name, ch in loaded.config.channels.items():
        surge = ch.surge
        if surge is None:
            continue
        for i, spec in enumerate(surge.probes):
            where = ("channels", ch_name, "surge", "probes", i)
            if spec.type != "volume":
                errors.append(doc.error((*where, "type"), f"a surge is read by volume probes, not {spec.type!r}; "
                                        f"health checks go under channels.{ch_name}.health.probes"))
                continue
            data = spec.settings_data()
            if "threshold" not in data:
                if surge.threshold is None:
                    errors.append(doc.error(where, "threshold is missing: set it on the probe or as "
                                            f"channels.{ch_name}.surge.threshold"))
                    continue
                data["threshold"] = surge.threshold
            cls = probe_class("volume")
            try:
                settings = cls.Settings.model_validate(data)
            except ValidationError as exc:
                errors.extend(validation_errors(doc, exc, where))
                continue
            loaded.surge_probes.setdefault(ch_name, []).append(ProbeInstance(ch_name, i, cls, settings))
        playbook = _playbook_of_kind(loaded, doc, ("channels", ch_name, "surge", "playbook"), surge.playbook,
                                     "surge", "a surge playbook", errors)
        if playbook is not None:
            pairs.append((ch_name, playbook))
    return pairs


_GROUP_KEYS = {"open": "steps", "update": "on_update", "close": "on_close"}


def step_error(loaded: LoadedConfig, channel: str, playbook: Playbook, group: str, step: StepSpec,
               field_name: str, message: str) -> InputError:
    """Locate a step problem in the file the step came from: the playbook, or the config's add_steps."""
    pb_doc = loaded.documents.get(playbook.name)
    key = _GROUP_KEYS[group]
    if pb_doc is not None and isinstance(pb_doc.data, dict):
        for i, raw in enumerate(pb_doc.data.get(key) or []):
            if isinstance(raw, dict) and raw.get("id") == step.id:
                path: Path_ = (key, i, field_name) if field_name in raw else (key, i)
                return pb_doc.error(path, message)
    cfg_doc = loaded.documents[""]
    ch = loaded.config.channels[channel]
    for extra_key, items in (("add_steps", ch.add_steps), ("add_on_close", ch.add_on_close)):
        for i, s in enumerate(items):
            if s.id == step.id:
                return cfg_doc.error(("channels", channel, extra_key, i, field_name), message)
    return cfg_doc.error(("channels", channel, "override", step.id), message)


def check_steps(loaded: LoadedConfig, pairs: list[tuple[str, Playbook]] | None = None) -> list[InputError]:
    """Every step lands on known sinks that support its action, and its template exists in every locale."""
    from continuity.templating import TemplateCatalog

    errors: list[InputError] = []
    catalog = TemplateCatalog(loaded)
    seen: set[tuple[str, str, str, str, str]] = set()
    for channel, playbook in pairs if pairs is not None else list(loaded.channel_playbooks.items()):
        for group, step in playbook.all_steps():
            sig = (playbook.name, group, step.id, step.to, step.template)
            if sig in seen:
                continue
            seen.add(sig)

            def err(field_name: str, message: str, group: str = group, step: StepSpec = step,
                    channel: str = channel, playbook: Playbook = playbook) -> None:
                errors.append(step_error(loaded, channel, playbook, group, step, field_name, message))

            if step.to not in loaded.routes and step.to not in loaded.sinks:
                known = sorted(set(loaded.routes) | set(loaded.sinks))
                err("to", f"unknown route or sink {step.to!r}; known: {', '.join(known)}")
                continue
            for sink_name in loaded.targets(step):
                inst = loaded.sinks.get(sink_name)
                if inst is None:
                    continue
                if step.action not in inst.cls.actions:
                    err("to", f"sink {sink_name!r} ({inst.cls.type_name}) cannot do {step.action!r}")
                elif step.reversible and not inst.cls.reversible:
                    err("to", f"{step.action!r} is switched off on close, but sink {sink_name!r} cannot undo it")
            for locale in catalog.locales_for(step.audience):
                if catalog.find(step.template, locale) is None:
                    err("template", f"template {step.template!r} not found for locale {locale!r} "
                        f"(looked in {', '.join(str(d) for d in loaded.template_dirs)})")
                    break
            if step.only_if is not None and step.only_if not in {s.id for _, s in playbook.all_steps()}:
                err("only_if", f"no step {step.only_if!r} in playbook {playbook.name!r}")
    return errors


def every_playbook(loaded: LoadedConfig) -> list[tuple[str, Playbook]]:
    """Each channel's playbook, plus every other playbook in the search path (checked against the first
    channel), so `validate` catches a broken plan B before the day it is needed."""
    pairs = list(loaded.channel_playbooks.items())
    errors: list[InputError] = []
    first = next(iter(loaded.config.channels))
    for directory in loaded.playbook_dirs:
        for path in sorted(directory.glob("*.yaml")):
            name = path.stem
            if name in loaded.playbooks or name.startswith(CAMPAIGN_FILE_PREFIX):
                continue
            try:
                loaded.playbooks[name], loaded.documents[name] = load_playbook(name, loaded.playbook_dirs)
            except InputErrors as exc:
                errors.extend(exc.errors)
                continue
            except InputError as exc:
                errors.append(exc)
                continue
            pairs.append((first, loaded.playbooks[name]))
    errors.extend(check_steps(loaded, pairs[len(loaded.channel_playbooks):]))
    if errors:
        raise InputErrors(errors)
    return pairs
