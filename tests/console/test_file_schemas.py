"""`continuity schema campaign` and `schema playbook`: JSON Schemas from the models the loader validates
with, shipped beside the playbooks (each shipped file names its schema in a yaml-language-server line), and
every shipped file passes its schema as an editor reads it (YAML timestamps as text)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"


def _schema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "continuity", "schema", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def _as_editor_reads(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_editor_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_reads(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@pytest.mark.parametrize("kind", ["campaign", "playbook"])
def test_the_shipped_schema_is_what_the_command_prints_and_every_shipped_file_passes(kind: str) -> None:
    printed = _schema(kind)
    assert printed.returncode == 0, printed.stderr
    schema = json.loads(printed.stdout)
    assert schema["title"] == f"continuity {kind}" and schema["additionalProperties"] is False
    assert json.loads((PLAYBOOKS / f"{kind}.schema.json").read_text(encoding="utf-8")) == schema
    files = [p for p in sorted(PLAYBOOKS.glob("*.yaml")) if (p.name.startswith("campaign-")) == (kind == "campaign")]
    assert files
    validator = Draft202012Validator(schema)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == f"# yaml-language-server: $schema={kind}.schema.json", path.name
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_as_editor_reads(yaml.safe_load(text)))]
        assert not errors, (path.name, errors)
    # And it catches what the loader refuses: an unknown key, a bad duration pattern aside.
    broken = _as_editor_reads(yaml.safe_load(files[0].read_text(encoding="utf-8")))
    broken["colour"] = "red"
    assert not validator.is_valid(broken)


def test_plain_schema_stays_the_configs_and_an_unknown_kind_is_refused() -> None:
    plain = _schema()
    assert plain.returncode == 0 and json.loads(plain.stdout)["title"] == "continuity configuration"
    wrong = _schema("playbooks")
    assert wrong.returncode == 2 and "expected one of config, campaign, playbook" in wrong.stderr
    assert wrong.stdout == ""
