"""Rendering done once without going stale: templates compiled once per process and template folders (a
template edited on disk, or a reloaded config naming other folders, is read again), durations formatted once
per (minutes, locale), outbox mail written in one pass exactly as the email package writes it, and the
situation's earlier rows read only for sinks that use them."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity import templating
from continuity.clock import ManualClock
from continuity.runner import Runner
from continuity.sinks.base import Action, Rendered, SinkContext
from continuity.sinks.outbox import OutboxSettings, OutboxSink
from continuity.templating import TemplateCatalog
from continuity.variables import _human_duration, human_duration
from tests.conftest import NOW, Configure, MakeEngine


class Source:
    """The two things a catalog reads of a loaded config."""

    def __init__(self, dirs: list[Path]) -> None:
        self.template_dirs = dirs
        org = type("Org", (), {"default_locale": "en", "locales": ["en"], "staff_lang": "en"})()
        self.config = type("Config", (), {"organisation": org})()


def pack(root: Path, body: str) -> Path:
    (root / "en" / "t").mkdir(parents=True, exist_ok=True)
    path = root / "en" / "t" / "note.j2"
    path.write_text("{% block subject %}S{% endblock %}{% block body %}" + body + "{% endblock %}", encoding="utf-8")
    return path


def test_catalogs_of_the_same_folders_share_one_compilation(tmp_path: Path) -> None:
    pack(tmp_path / "a", "hello {{ name }}")
    first, second = TemplateCatalog(Source([tmp_path / "a"])), TemplateCatalog(Source([tmp_path / "a"]))
    assert first.render("t/note", "en", {"name": "x"}).body == "hello x"
    assert second.env is first.env
    assert second._load("en/t/note.j2") is first._load("en/t/note.j2")  # not compiled a second time


def test_a_template_edited_on_disk_is_read_again_by_the_next_catalog(tmp_path: Path) -> None:
    path = pack(tmp_path / "a", "old text")
    assert TemplateCatalog(Source([tmp_path / "a"])).render("t/note", "en", {}).body == "old text"
    pack(tmp_path / "a", "new text")
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))  # a coarse clock must not hide the edit from this test
    assert TemplateCatalog(Source([tmp_path / "a"])).render("t/note", "en", {}).body == "new text"


def test_a_reload_naming_other_folders_uses_them(tmp_path: Path) -> None:
    pack(tmp_path / "a", "from a")
    pack(tmp_path / "b", "from b")
    assert TemplateCatalog(Source([tmp_path / "a"])).render("t/note", "en", {}).body == "from a"
    assert TemplateCatalog(Source([tmp_path / "b", tmp_path / "a"])).render("t/note", "en", {}).body == "from b"
    assert len({k for k in templating._SHARED if str(tmp_path) in k[0][0]}) == 2


def test_the_file_found_for_a_locale_is_kept_per_catalog_only(tmp_path: Path) -> None:
    """A catalog remembers which file serves (name, locale), like its compiled templates; a template added on
    disk (a locale of its own instead of the fallback) is used by the next catalog, and one not found at all is
    looked for again."""
    pack(tmp_path / "a", "english")
    source = Source([tmp_path / "a"])
    source.config.organisation.locales = ["en", "hu"]
    first = TemplateCatalog(source)
    assert first.render("t/note", "hu", {}).locale == "en"  # falls back
    assert first.find("t/other", "en") is None
    (tmp_path / "a" / "hu" / "t").mkdir(parents=True)
    (tmp_path / "a" / "hu" / "t" / "note.j2").write_text("{% block body %}magyar{% endblock %}", encoding="utf-8")
    (tmp_path / "a" / "en" / "t" / "other.j2").write_text("{% block body %}new{% endblock %}", encoding="utf-8")
    assert first.find("t/other", "en") == "en/t/other.j2"
    second = TemplateCatalog(source)
    got = second.render("t/note", "hu", {})
    assert (got.locale, got.body) == ("hu", "magyar")


def test_a_reloaded_config_renders_its_own_templates(engine: MakeEngine, configure: Configure,
                                                     workdir: Path) -> None:
    """An engine of the same process after the config gained a template pack of its own: the pack's text,
    not the shipped template compiled for the first engine."""
    first = engine()
    first.open("phone", reason="x", eta=timedelta(hours=1), by="t")
    row = next(r for r in first.store.steps_for(1) if r.step_id == "staff-runbook")
    before = Runner(first).build_action(row).primary.body
    lang = first.loaded.config.organisation.staff_lang
    own = workdir / "templates" / lang / (row.template + ".j2")
    own.parent.mkdir(parents=True)
    own.write_text("{% block subject %}Ours{% endblock %}{% block body %}our own runbook{% endblock %}",
                   encoding="utf-8")
    configure(lambda cfg: cfg.setdefault("paths", {}).update(templates=["templates"]))
    second = engine()
    after = Runner(second).build_action(row).primary.body
    assert before != after == "our own runbook"


@pytest.mark.parametrize("locale", ["en", "hu", "sk", "pl"])
def test_durations_cached_by_the_minute_say_what_babel_says(locale: str) -> None:
    for seconds in (0, 59, 60, 61, 3599, 3600, 3661, 7199, 86399, 86400, 90061, 200000):
        delta = timedelta(seconds=seconds)
        assert human_duration(delta, locale) == _human_duration.__wrapped__(seconds // 60 * 60, locale)
    assert human_duration(timedelta(minutes=65, seconds=1), locale) == human_duration(timedelta(minutes=65), locale)


def sink(tmp_path: Path, sender: str = "continuity@localhost") -> OutboxSink:
    return OutboxSink("outbox", OutboxSettings(directory=str(tmp_path), sender=sender),
                      SinkContext(tmp_path, ManualClock(NOW), None))  # type: ignore[arg-type]


def action(subject: str, bodies: list[str], key: str = "s1:open:staff-runbook:1") -> Action:
    return Action(key=key, operation="apply", kind="notify", situation_id=1, step_id="staff-runbook",
                  channel="phone", audience="staff", created_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
                  messages=[Rendered(loc, {"subject": subject, "body": body})
                            for loc, body in zip(["en", "hu", "sk", "pl"], bodies, strict=False)])


@pytest.mark.parametrize(("subject", "bodies", "sender"), [
    ("OUTAGE #1: phone line", ["Hello,\nthe line is down.", "Szia!"], "continuity@localhost"),
    ("Kimaradás: telefonos ügyfélszolgálat", ["Kedves Ügyfelünk!\n\nÁrvíztűrő tükörfúrógép"], "continuity@localhost"),
    ("A subject long enough that the header has to be folded over two lines, surely by now", ["x"],
     "continuity@localhost"),
    ("Two  spaces", ["body"], "continuity@localhost"),
    ("=?utf-8?q?looks_encoded?=", ["body"], "continuity@localhost"),
    ("", [""], "continuity@localhost"),
    ("Plain", ["line\r\nwith CRLF\rand CR\n\n\nblank lines\n"], "continuity@localhost"),
    ("Plain", ["a" * 2000], "continuity@localhost"),
    ("Plain", ["ok"], "Continuity <ops@shop.example>"),
    ("Plain", ["ok"], "ops@shop.example"),
])
def test_outbox_mail_in_one_pass_is_byte_for_byte_the_email_package_s(tmp_path: Path, subject: str,
                                                                     bodies: list[str], sender: str) -> None:
    out = sink(tmp_path, sender)
    act = action(subject, bodies)
    assert out._eml(act) == out._eml_built(act)


def test_outbox_writes_the_one_pass_mail(tmp_path: Path) -> None:
    out = sink(tmp_path)
    act = action("OUTAGE #1: phone line", ["Hello", "Szia"])
    outcome = asyncio.run(out.apply(act))
    assert outcome.ok
    assert Path(outcome.detail).read_bytes() == out._eml_built(act)


def test_earlier_rows_are_read_only_for_sinks_that_use_them(engine: MakeEngine, monkeypatch: Any) -> None:
    eng = engine()
    eng.open("phone", reason="x", eta=timedelta(hours=1), by="t")
    runner = Runner(eng)
    row = next(r for r in eng.store.steps_for(1) if r.sink == "outbox")
    reads: list[int] = []
    real = runner.earlier
    monkeypatch.setattr(runner, "earlier", lambda r: reads.append(r.id) or real(r))
    runner.build_action(row)
    assert reads == []  # the outbox names its files by key: what ran before does not matter to it
    x_like = type("XLike", (OutboxSink,), {"reads_earlier": True})
    monkeypatch.setitem(eng.sink_instances, "outbox", type(eng.sink_instances["outbox"])(
        **{**vars(eng.sink_instances["outbox"]), "cls": x_like}))
    runner.build_action(row)
    assert reads == [row.id]


def test_compiled_templates_kept_on_disk_follow_the_source(tmp_path: Path) -> None:
    """Two environments stand for two processes sharing the on-disk bytecode cache: the second compiles
    nothing for an unchanged template and compiles again for an edited one."""
    path = pack(tmp_path / "a", "first {{ n }}")
    one = templating.make_environment([tmp_path / "a"])
    assert one.bytecode_cache is not None
    assert one.get_template("en/t/note.j2").blocks["body"]
    pack(tmp_path / "a", "second {{ n }}")
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    two = templating.make_environment([tmp_path / "a"])
    body = two.get_template("en/t/note.j2")
    assert "second 1" in "".join(body.blocks["body"](body.new_context({"n": 1})))


def test_string_templates_compile_once_per_source() -> None:
    env = templating.make_environment([])
    first = env.from_string("Hello {{ name }}")
    assert env.from_string("Hello {{ name }}") is first
    other = env.from_string("Bye {{ name }}")
    assert other is not first and other.render(name="x") == "Bye x"
    assert first.render(name="y") == "Hello y"


def test_sinks_that_skip_earlier_rows_never_read_them() -> None:
    """A sink that says `reads_earlier = False` gets `Action.earlier == ()`: it must not look at it (nor inherit
    a method that does), or it would silently see nothing."""
    import inspect

    from continuity.sinks import SINKS, sink_class
    from continuity.sinks.base import Sink

    skipping = []
    for type_name in SINKS:
        cls = sink_class(type_name)
        if getattr(cls, "reads_earlier", True):
            continue
        skipping.append(type_name)
        for klass in cls.__mro__:
            if klass not in (Sink, object):
                assert ".earlier" not in inspect.getsource(klass), (type_name, klass.__name__)
    assert {"outbox", "file_banner", "webhook", "email", "chat", "voice_text"} <= set(skipping)
