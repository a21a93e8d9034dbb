"""The phone announcement as plain-text files, for a PBX or IVR that reads text aloud (text-to-speech).

One file per language, `<name>.<locale>.txt`, plus `<name>.txt` in the organisation's first language for a
PBX that takes a single file. Several situations can be announced at once (phone down during a surge), so a
small state file keeps each situation's text: apply merges it in, undo takes it out, and when nothing is left
the files are removed (or emptied, `when_idle: empty`, for a PBX that wants the file to exist). Writes are
atomic and serialised by a lock file, like the file_banner sink's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from continuity.sinks.base import Action, Outcome
from continuity.sinks.files import Entries, FilesSettings, LockedFilesSink, UnreadableFile, read_json, write_atomic

# XML 1.0 and most text-to-speech engines choke on control characters; a pasted reason may carry some.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def spoken(text: str) -> str:
    """Template output as one line of speech: no control characters, single spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


# situation id (JSON key) -> {"order": [locales], "texts": {locale: text}}
Announcements = Entries


class VoiceTextSettings(FilesSettings):
    """Where the PBX looks for the text, what the files are called, and what "nothing to say" looks like."""

    name: str = "continuity-announcement"
    when_idle: Literal["remove", "empty"] = "remove"


class VoiceTextSink(LockedFilesSink):
    type_name = "voice_text"
    reads_earlier = False  # the state file holds the current text (see Runner._reads_earlier)
    Settings = VoiceTextSettings
    actions = frozenset({"announce"})
    idempotent = True
    reversible = True
    description = "the phone announcement as text files (one per language) for a PBX that reads text aloud"
    noun = "announcement"

    settings: VoiceTextSettings

    def path_for(self, locale: str | None) -> Path:
        suffix = f".{locale}" if locale else ""
        return self.directory / f"{self.settings.name}{suffix}.txt"

    @property
    def state_path(self) -> Path:
        return self.directory / f".{self.settings.name}.json"

    async def apply(self, action: Action) -> Outcome:
        texts = {r.locale: spoken(r.body) for r in action.messages if spoken(r.body)}
        if not texts:
            return Outcome.fail("the step rendered no announcement text")
        order = list(dict.fromkeys(r.locale for r in action.messages if r.locale in texts))
        entry = {"order": order, "texts": texts}
        return await self.merge(lambda state: {**state, str(action.situation_id): entry}, "announcement on")

    async def undo(self, action: Action) -> Outcome:
        situation = str(action.situation_id)
        return await self.merge(lambda state: {k: v for k, v in state.items() if k != situation},
                                "announcement off")

    def summary(self, left: int) -> str:
        return f"{left} situation(s) announced in {self.path_for(None).name}"

    def write_entries(self, before: Announcements, after: Announcements) -> None:
        locales: list[str] = []
        for entry in (*after.values(), *before.values()):
            locales.extend(loc for loc in entry["order"] if loc not in locales)
        primary = next(iter(after.values()))["order"][0] if after else None
        for locale in [None, *locales]:
            loc = locale or primary
            text = "\n\n".join(e["texts"][loc] for e in after.values() if loc in e["texts"]) if loc else ""
            path = self.path_for(locale)
            if text:
                write_atomic(path, text + "\n")
            elif self.settings.when_idle == "empty":
                write_atomic(path, "")
            else:
                path.unlink(missing_ok=True)
        if after:
            write_atomic(self.state_path, json.dumps(after, ensure_ascii=False, indent=2) + "\n")
        else:
            self.state_path.unlink(missing_ok=True)

    def read_entries(self) -> Announcements:
        doc = read_json(self.state_path)
        if not isinstance(doc, dict) or not all(isinstance(v, dict) and "order" in v and "texts" in v
                                                for v in doc.values()):
            raise UnreadableFile(f"{self.state_path} is not a state file continuity wrote; move it away and run again")
        return doc
