"""`continuity schema` describes the config the loader accepts: nothing less (an editor must not flag a
working config, shorthands included) and no typo more (unknown keys and wrong types are still flagged).

The schema is taken from the real CLI; the loader's verdict from the real `load_config`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from continuity.config.loader import load_config
from continuity.errors import InputError, InputErrors
from tests.conftest import CONFIG_NAME, EXAMPLE_CONFIG, run_cli

# Variables the shorthand configs reference; the loader resolves them before the models see the values.
ENV = {"RETRIES": "4", "BIND": "127.0.0.1:9000", "LEAD": "3d", "COMBINE": "any", "CLOSE_MANUAL": "true",
       "FALLBACK": "chat"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("schema")
    shutil.copyfile(EXAMPLE_CONFIG, workdir / CONFIG_NAME)
    proc = run_cli(workdir, "schema")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return data


def put(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def loader_accepts(tmp_path: Path, data: dict[str, Any]) -> bool:
    path = tmp_path / CONFIG_NAME
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        load_config(path, environ=ENV)
    except (InputError, InputErrors):
        return False
    return True


def schema_errors(validator: Draft202012Validator, data: dict[str, Any]) -> list[str]:
    """`path: message` of every error, and of the errors inside each branch of a failed anyOf."""
    found, todo = [], list(validator.iter_errors(data))
    while todo:
        error = todo.pop(0)
        found.append(f"{'.'.join(map(str, error.absolute_path))}: {error.message}")
        todo.extend(error.context or [])
    return found


def test_schema_is_draft_2020_12_and_accepts_the_shipped_example(
        schema: dict[str, Any], validator: Draft202012Validator) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_errors(validator, example()) == []


def every_shorthand(tmp_path: Path) -> dict[str, Any]:
    """The example config, edited to use each way of writing a value that the loader accepts."""
    (tmp_path / "pbx-url.txt").write_text("https://pbx.example.test/twiml/queue\n", encoding="utf-8")
    data = example()
    phone = data["channels"]["phone"]
    phone["fallbacks"] = ["email", {"channel": "chat", "extra_wait": "1h 30m"}, "${FALLBACK}"]
    phone["override"] = {"website-banner": {"after": "15M"}, "social-post": {"disabled": True}}
    phone["add_steps"] = [{"id": "call-provider", "after": 600, "every": "1h30m", "action": "notify",
                           "to": "staff", "template": "outage/staff-reminder"}]
    phone["health"] = {
        "every": 30,  # a bare number is seconds
        "combine": "${COMBINE}",
        "close_manual": "${CLOSE_MANUAL}",
        "flapping": {"changes": 4, "window": " 10m "},
        "probes": [{"type": "http", "url": "https://www.example.com/", "timeout": "5s"}],
    }
    data["channels"]["chat"]["fallbacks"] = ["email"]
    data["channels"]["social"]["fallbacks"] = [{"channel": "email"}]  # the mapping without extra_wait
    data["retry"].update(attempts="${RETRIES}", first_delay="2S", max_delay="1w", inline_budget=0)
    data["campaigns"]["min_lead"] = "${ LEAD }"
    data["daemon"]["bind"] = "${BIND}"
    data["daemon"]["public"]["voice_next_url"] = "${file:pbx-url.txt}"
    return data


def test_every_shorthand_is_accepted_by_the_loader_and_the_schema(
        tmp_path: Path, validator: Draft202012Validator) -> None:
    data = every_shorthand(tmp_path)

    assert loader_accepts(tmp_path, data)
    assert schema_errors(validator, data) == []


# (what, where, value, does the loader accept it): the schema must say the same.
AGREEMENT = [
    ("duration", ("retry", "max_delay"), "1h30m", True),
    ("duration with spaces", ("retry", "max_delay"), "1h 30m", True),
    ("duration in capitals", ("retry", "max_delay"), "2H", True),
    ("duration in weeks", ("retry", "max_delay"), "1w2d", True),
    ("duration as seconds", ("retry", "max_delay"), 90, True),
    ("zero duration", ("retry", "max_delay"), 0, True),
    ("duration from the environment", ("retry", "max_delay"), "${LEAD}", True),
    ("duration with a number in quotes", ("retry", "max_delay"), "90", False),
    ("ISO 8601 duration", ("retry", "max_delay"), "PT30S", False),
    ("fractional duration", ("retry", "max_delay"), "1.5h", False),
    ("negative duration", ("retry", "max_delay"), -5, False),
    ("duration as a flag", ("retry", "max_delay"), True, False),
    ("duration with a unit only", ("retry", "max_delay"), "m", False),
    ("fallback by name", ("channels", "email", "fallbacks", 0), "chat", True),
    ("fallback from the environment", ("channels", "email", "fallbacks", 0), "${FALLBACK}", True),
    ("fallback that is no name", ("channels", "email", "fallbacks", 0), "Chat Room", False),
    ("fallback as a number", ("channels", "email", "fallbacks", 0), 3, False),
    ("number from the environment", ("retry", "attempts"), "${RETRIES}", True),
    ("escaped reference is a literal", ("retry", "attempts"), "$${RETRIES}", False),
    ("reference to no variable name", ("retry", "attempts"), "${1X}", False),
    ("choice from the environment", ("daemon", "bind"), "${BIND}", True),
    ("channel name with capitals", ("channels", "Phone"), {"contact": "x"}, False),
]


@pytest.mark.parametrize(("where", "value", "accepted"), [c[1:] for c in AGREEMENT], ids=[c[0] for c in AGREEMENT])
def test_schema_agrees_with_the_loader(tmp_path: Path, validator: Draft202012Validator,
                                       where: tuple[str | int, ...], value: Any, accepted: bool) -> None:
    data = example()
    put(data, where, value)

    assert loader_accepts(tmp_path, data) is accepted
    assert (schema_errors(validator, data) == []) is accepted, schema_errors(validator, data)


# (what, where, value, the path of the value the schema flags, a word its message names)
REJECTED = [
    ("typo in a top-level key", ("retrys",), {"attempts": 2}, "", "retrys"),
    ("typo in a nested key", ("organisation", "defualt_locale"), "hu", "organisation", "defualt_locale"),
    ("typo in a fallback", ("channels", "phone", "fallbacks", 0), {"chanel": "email"}, "channels.phone.fallbacks.0",
     "'chanel' was unexpected"),
    ("typo in a daemon setting", ("daemon", "public", "banner_pol"), "30s", "daemon.public", "banner_pol"),
    ("text for a number", ("retry", "attempts"), "six", "retry.attempts", "not of type 'integer'"),
    ("number out of range", ("campaigns", "morning_hour"), 24, "campaigns.morning_hour", "maximum of 23"),
    ("a name for a list", ("channels", "social", "fallbacks"), "email", "channels.social.fallbacks", "array"),
    ("a list for a mapping", ("organisation",), ["Example Webshop"], "organisation", "object"),
    ("unknown choice", ("channels", "phone", "health"),
     {"combine": "most", "probes": [{"type": "http", "url": "https://www.example.com/"}]},
     "channels.phone.health.combine", "is not one of ['all', 'any']"),
]


@pytest.mark.parametrize(("where", "value", "flagged", "named"), [c[1:] for c in REJECTED],
                         ids=[c[0] for c in REJECTED])
def test_schema_rejects_typos_and_wrong_types(tmp_path: Path, validator: Draft202012Validator,
                                              where: tuple[str | int, ...], value: Any, flagged: str,
                                              named: str) -> None:
    data = example()
    put(data, where, value)

    errors = schema_errors(validator, data)
    assert [e for e in errors if e.startswith(f"{flagged}: ") and named in e], errors
    assert not loader_accepts(tmp_path, data)  # the loader agrees: this is a real mistake


def defaults(node: Any) -> Iterator[dict[str, Any]]:
    """Every subschema that carries a default, anywhere in the document."""
    if isinstance(node, dict):
        if "default" in node:
            yield node
        for value in node.values():
            yield from defaults(value)
    elif isinstance(node, list):
        for value in node:
            yield from defaults(value)


def test_every_default_is_written_as_the_loader_reads_it(schema: dict[str, Any]) -> None:
    # An editor offers the default as a completion: pydantic's "PT2S" would be refused by the loader.
    checked = 0
    for sub in defaults(schema):
        own = Draft202012Validator({"$defs": schema["$defs"], **{k: v for k, v in sub.items() if k != "default"}})
        assert list(own.iter_errors(sub["default"])) == [], sub
        checked += 1
    assert checked > 20
    assert schema["$defs"]["RetryPolicy"]["properties"]["first_delay"]["default"] == "2s"
