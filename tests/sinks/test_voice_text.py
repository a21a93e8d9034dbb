"""VoiceTextSink: one text file per language for a PBX, merged per situation, removed or emptied on undo."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.sinks.base import Action, Outcome, Rendered, SinkContext
from continuity.sinks.voice_text import VoiceTextSink


def make_sink(context: SinkContext, **settings: Any) -> VoiceTextSink:
    cfg = VoiceTextSink.Settings.model_validate({"directory": "pbx", **settings})
    return VoiceTextSink("pbx", cfg, context)


def run(sink: VoiceTextSink, action: Action) -> Outcome:
    return asyncio.run(sink.apply(action) if action.operation == "apply" else sink.undo(action))


def files(context: SinkContext) -> dict[str, str]:
    folder = context.base_dir / "pbx"
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def voice(make_action: Any, situation: int, en: str, de: str, operation: str = "apply") -> Action:
    action: Action = make_action(kind="announce", situation_id=situation, operation=operation, messages=[
        Rendered("en", {"body": en}), Rendered("de", {"body": de})])
    return action


def test_class_describes_itself() -> None:
    assert VoiceTextSink.type_name == "voice_text"
    assert VoiceTextSink.actions == frozenset({"announce"})
    assert VoiceTextSink.idempotent and VoiceTextSink.reversible


def test_apply_writes_one_line_per_language(context: SinkContext, make_action: Any) -> None:
    outcome = run(make_sink(context), voice(make_action, 7, "Our phone line\n\nis  down.", "Telefon\x00 gestört."))
    assert outcome.ok, outcome.detail
    assert files(context) == {
        "continuity-announcement.de.txt": "Telefon gestört.\n",
        "continuity-announcement.en.txt": "Our phone line is down.\n",
        "continuity-announcement.txt": "Our phone line is down.\n",  # the first language, for one-file PBXs
    }


def test_situations_merge_and_undo_takes_one_out(context: SinkContext, make_action: Any) -> None:
    sink = make_sink(context)
    assert run(sink, voice(make_action, 7, "Phone down.", "Telefon gestört.")).ok
    assert run(sink, voice(make_action, 8, "Very busy.", "Viel los.")).ok
    assert run(sink, voice(make_action, 7, "Phone down.", "Telefon gestört.")).ok  # idempotent re-run
    assert files(context)["continuity-announcement.en.txt"] == "Phone down.\n\nVery busy.\n"
    assert run(sink, voice(make_action, 7, "", "", operation="undo")).ok
    assert files(context)["continuity-announcement.de.txt"] == "Viel los.\n"
    assert run(sink, voice(make_action, 8, "", "", operation="undo")).ok
    assert files(context) == {}
    assert run(sink, voice(make_action, 8, "", "", operation="undo")).ok  # undo twice: still fine


def test_idle_files_can_stay_empty(context: SinkContext, make_action: Any) -> None:
    sink = make_sink(context, when_idle="empty", name="ivr")
    assert run(sink, voice(make_action, 7, "Phone down.", "Telefon gestört.")).ok
    assert run(sink, voice(make_action, 7, "", "", operation="undo")).ok
    assert files(context) == {"ivr.de.txt": "", "ivr.en.txt": "", "ivr.txt": ""}


def test_nothing_to_say_and_foreign_state_are_errors(context: SinkContext, make_action: Any) -> None:
    sink = make_sink(context)
    assert run(sink, voice(make_action, 7, " \n", "")).status == "error"
    (context.base_dir / "pbx").mkdir()
    (context.base_dir / "pbx" / ".continuity-announcement.json").write_text("[1, 2]")
    outcome = run(sink, voice(make_action, 7, "Phone down.", "Telefon gestört."))
    assert outcome.status == "error" and "not a state file" in outcome.detail


def test_unwritable_directory_is_an_error_not_a_crash(context: SinkContext, make_action: Any) -> None:
    (context.base_dir / "pbx").write_text("a file where the folder should be")
    outcome = run(make_sink(context), voice(make_action, 7, "Phone down.", "Telefon gestört."))
    assert outcome.status == "error" and "cannot write the announcement" in outcome.detail


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        VoiceTextSink.Settings.model_validate({"directory": "pbx", "when_idle": "delete"})
    with pytest.raises(ValidationError):
        VoiceTextSink.Settings.model_validate({"directory": "pbx", "colour": "red"})


def test_paths_are_relative_to_the_config(context: SinkContext) -> None:
    assert make_sink(context).path_for("hu") == Path(context.base_dir) / "pbx" / "continuity-announcement.hu.txt"
