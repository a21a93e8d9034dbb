"""Bad input, one table: every mistake an operator can make in the config, a playbook, a template or on the
command line ends in exit code 2 and one clean message naming the file, the line and the field, with no
traceback, and the ledger is left exactly as it was.

Each case starts from the shipped example config and breaks one thing; the expected line is computed from
the edited text, so the table does not go stale when the example's comments change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from continuity.shipped import shipped_dir
from tests.conftest import (
    CONFIG_NAME,
    EXAMPLE_CONFIG,
    NOW,
    STORE_NAME,
    RunCli,
    build_engine,
    run_cli,
    store_snapshot,
    tick,
    tree,
)


@dataclass(frozen=True)
class Expect:
    """Where the error must point: a file (as the message ends its path), a line, a field; words it names."""

    file: str | None = CONFIG_NAME
    line: int | None = None
    field: str | None = None
    words: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()  # text that must appear nowhere in the output (a literal secret)


# Editing helpers: each returns the 1-based line it changed ---------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _find(lines: list[str], starts_with: str, after: str | None = None) -> int:
    """Index of the first line starting with `starts_with` (after the first line starting with `after`)."""
    start = 0
    if after is not None:
        start = next(i for i, text in enumerate(lines) if text.startswith(after)) + 1
    return next(i for i in range(start, len(lines)) if lines[i].startswith(starts_with))


def replace_line(path: Path, starts_with: str, new: str, *, after: str | None = None) -> int:
    lines = _lines(path)
    i = _find(lines, starts_with, after)
    lines[i : i + 1] = new.split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return i + 1


def insert_after(path: Path, starts_with: str, new: str) -> int:
    lines = _lines(path)
    i = _find(lines, starts_with)
    lines[i + 1 : i + 1] = new.split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return i + 2


def line_of(path: Path, starts_with: str, after: str | None = None) -> int:
    return _find(_lines(path), starts_with, after) + 1


def cfg(w: Path) -> Path:
    return w / CONFIG_NAME


def user_playbook(w: Path, name: str = "outage-phone") -> Path:
    """Copy a shipped playbook into ./my-playbooks (listed in paths.playbooks) to be broken there."""
    replace_line(cfg(w), "  playbooks: []", "  playbooks: [my-playbooks]")
    target = w / "my-playbooks" / f"{name}.yaml"
    target.parent.mkdir()
    shutil.copyfile(shipped_dir("playbooks") / f"{name}.yaml", target)
    return target


def user_template(w: Path, relative: str, text: str) -> None:
    """A template in ./my-templates (listed in paths.templates), which wins over the shipped one."""
    replace_line(cfg(w), "  templates: []", "  templates: [my-templates]")
    target = w / "my-templates" / relative
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")


EMAIL_SINK = """\
  staff_mail:
    type: email
    host: 127.0.0.1
    username: alerts@example.test
    password: {password}
    sender: alerts@example.test
    to: [support-team@example.test]"""


def add_email_sink(w: Path, password: str) -> int:
    """Add an email sink after the website sink; the line of its password."""
    first = insert_after(cfg(w), "    directory: site/banner", EMAIL_SINK.format(password=password))
    return first + 4


# The cases ------------------------------------------------------------------------------------------------


def yaml_syntax(w: Path) -> Expect:
    line = replace_line(cfg(w), "  name: Example Webshop", "  name: Example: Webshop")
    return Expect(line=line, words=("YAML",))


def tab_indentation(w: Path) -> Expect:
    line = replace_line(cfg(w), "  name: Example Webshop", "\tname: Example Webshop")
    return Expect(line=line, words=("tab",))


def empty_file(w: Path) -> Expect:
    cfg(w).write_text("", encoding="utf-8")
    return Expect(line=1, words=("empty",))


def only_comments(w: Path) -> Expect:
    cfg(w).write_text("# organisation:\n#   name: Example Webshop\n", encoding="utf-8")
    return Expect(line=1, words=("empty",))


def list_at_top(w: Path) -> Expect:
    cfg(w).write_text("- phone\n- email\n", encoding="utf-8")
    return Expect(line=1, words=("mapping",))


def duplicate_key(w: Path) -> Expect:
    line = insert_after(cfg(w), "  name: Example Webshop", "  name: Another Webshop")
    return Expect(line=line, words=("duplicate", "name"))


def unknown_top_level_key(w: Path) -> Expect:
    line = replace_line(cfg(w), "retry:", "retrys:")
    return Expect(line=line, field="retrys", words=("unknown key",))


def unknown_nested_key(w: Path) -> Expect:
    line = replace_line(cfg(w), "    fallbacks:", "    fallbaks:", after="  phone:")
    return Expect(line=line, field="channels.phone.fallbaks", words=("unknown key",))


def locales_not_a_list(w: Path) -> Expect:
    line = replace_line(cfg(w), "  locales: [hu, en, sk, pl]", "  locales: 5")
    return Expect(line=line, field="organisation.locales")


def attempts_not_a_number(w: Path) -> Expect:
    line = replace_line(cfg(w), "  attempts: 6", '  attempts: "many"')
    return Expect(line=line, field="retry.attempts")


def duration_with_words(w: Path) -> Expect:
    line = replace_line(cfg(w), "        extra_wait: 2h", "        extra_wait: 2 hours")
    return Expect(line=line, field="channels.phone.fallbacks[0].extra_wait", words=("2 hours",))


def duration_bad_unit(w: Path) -> Expect:
    line = replace_line(cfg(w), "        extra_wait: 2h", "        extra_wait: 5x")
    return Expect(line=line, field="channels.phone.fallbacks[0].extra_wait", words=("5x",))


def sink_setting_typo(w: Path) -> Expect:
    line = replace_line(cfg(w), "    directory: site/banner", "    directroy: site/banner")
    return Expect(line=line, field="sinks.website.directroy", words=("unknown key",))


def override_unknown_step(w: Path) -> Expect:
    line = replace_line(cfg(w), "    # override:", "    override:\n      website-baner: { after: 15m }")
    return Expect(line=line + 1, field="channels.phone.override.website-baner", words=("website-baner",))


def unknown_fallback_channel(w: Path) -> Expect:
    line = replace_line(cfg(w), "      - channel: email", "      - channel: fax", after="  phone:")
    return Expect(line=line, field="channels.phone.fallbacks[0]", words=("fax",))


def unknown_sink_in_route(w: Path) -> Expect:
    line = replace_line(cfg(w), "  staff: [outbox]", "  staff: [outbox, pager]")
    return Expect(line=line, field="routes.staff[1]", words=("pager",))


def unknown_sink_type(w: Path) -> Expect:
    line = replace_line(cfg(w), "    type: file_banner", "    type: ftp_banner")
    return Expect(line=line, field="sinks.website.type", words=("ftp_banner", "file_banner"))


def playbook_unknown_route(w: Path) -> Expect:
    pb = user_playbook(w)
    line = replace_line(pb, "    to: social", "    to: tweeter")  # the first one: steps[4], social-post
    return Expect(file="my-playbooks/outage-phone.yaml", line=line, field="steps[4].to", words=("tweeter",))


def playbook_step_unknown_key(w: Path) -> Expect:
    pb = user_playbook(w)
    line = replace_line(pb, "    after: 30m", "    afer: 30m")  # website-banner, steps[3]
    return Expect(file="my-playbooks/outage-phone.yaml", line=line, field="steps[3].afer", words=("unknown key",))


def playbook_unknown_action(w: Path) -> Expect:
    pb = user_playbook(w)
    line = replace_line(pb, "    action: post", "    action: tweet")
    return Expect(file="my-playbooks/outage-phone.yaml", line=line, field="steps[4].action", words=("tweet",))


def unknown_playbook_name(w: Path) -> Expect:
    line = replace_line(cfg(w), "    # playbook: outage-phone", "    playbook: outage-nope")
    return Expect(line=line, field="channels.phone.playbook", words=("outage-nope",))


def missing_template(w: Path) -> Expect:
    pb = user_playbook(w)
    line = replace_line(pb, "    template: outage/staff-runbook-phone", "    template: outage/no-such-runbook")
    return Expect(file="my-playbooks/outage-phone.yaml", line=line, field="steps[0].template",
                  words=("outage/no-such-runbook",))


def template_undefined_variable(w: Path) -> Expect:
    user_template(w, "en/outage/staff-runbook-phone.j2",
                  "{% block subject %}Phone down{% endblock %}\n{% block body %}\n"
                  "Call the provider on {{ provider_phone }}.\n{% endblock %}\n")
    return Expect(file="my-templates/en/outage/staff-runbook-phone.j2", line=3, words=("provider_phone",))


def template_syntax_error(w: Path) -> Expect:
    user_template(w, "en/outage/banner.j2",
                  "{% block title %}Down{% endblock %}\n{% block body %}{% if %}Sorry{% endif %}{% endblock %}\n")
    return Expect(file="my-templates/en/outage/banner.j2", line=2, words=("syntax",))


def not_utf8(w: Path) -> Expect:
    path = cfg(w)
    line = line_of(path, "  name: Example Webshop")
    path.write_bytes(path.read_bytes().replace(b"Example Webshop", b"Example Webshop \xe9s T\xe1rsa", 1))
    return Expect(line=line, words=("UTF-8",))


def store_not_sqlite(w: Path) -> Expect:
    line = replace_line(cfg(w), "  url: sqlite:///continuity.db", "  url: mysql://app:s3cret-pw@db/support")
    return Expect(line=line, field="store.url", words=("postgresql", "sqlite:///"), hidden=("s3cret-pw",))


def unset_env_var(w: Path) -> Expect:
    line = add_email_sink(w, "${SMTP_PASSWORD}")
    return Expect(line=line, field="sinks.staff_mail.password", words=("SMTP_PASSWORD",))


def literal_secret(w: Path) -> Expect:
    line = add_email_sink(w, "hunter2")
    return Expect(line=line, field="sinks.staff_mail.password", words=("secret",), hidden=("hunter2",))


CASES: dict[str, Callable[[Path], Expect]] = {f.__name__: f for f in (
    yaml_syntax, tab_indentation, empty_file, only_comments, list_at_top, duplicate_key,
    unknown_top_level_key, unknown_nested_key, locales_not_a_list, attempts_not_a_number,
    duration_with_words, duration_bad_unit, sink_setting_typo, override_unknown_step, unknown_fallback_channel,
    unknown_sink_in_route, unknown_sink_type, playbook_unknown_route, playbook_step_unknown_key,
    playbook_unknown_action, unknown_playbook_name, missing_template,
    template_undefined_variable, template_syntax_error, not_utf8, unset_env_var, literal_secret, store_not_sqlite,
)}

def cases(names: list[str]) -> list[object]:
    return [pytest.param(name) for name in names]


# Running the table ----------------------------------------------------------------------------------------
#
# Each run starts a Python process (most of a second), so the whole table runs up front, several processes at
# a time, and each test below only judges its own result.


@dataclass(frozen=True)
class Job:
    """One CLI run: in a fresh copy of the example config, optionally after an earlier outage, then broken."""

    case: str | None  # a key of CASES, or None to keep the config valid
    args: tuple[str, ...]
    prior: bool = False  # open (and run) an email outage in the store before breaking the config


@dataclass
class Ran:
    workdir: Path
    expect: Expect
    proc: subprocess.CompletedProcess[str]
    store_before: dict[str, tuple[bytes, int]]
    outbox_before: list[str]


OUTAGE = ("outage", "phone", "--reason", "x", "--eta", "2h")

# Problems `outage` itself must refuse before touching the ledger (template rendering is validate's job).
OUTAGE_CASES = ["yaml_syntax", "unknown_nested_key", "unknown_sink_type", "playbook_unknown_route",
                "missing_template", "unset_env_var", "literal_secret", "not_utf8"]
JSON_CASES = ["yaml_syntax", "unknown_nested_key", "playbook_unknown_route", "template_undefined_variable",
              "unset_env_var", "literal_secret"]

CLI_MISTAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "eta-banana": (("outage", "phone", "--reason", "x", "--eta", "banana"), ("--eta", "banana")),
    "unknown-channel": (("outage", "fax", "--reason", "x", "--eta", "2h"), ("fax", "phone")),
    "blank-reason": (("outage", "phone", "--reason", "   "), ("reason",)),
    "restore-unknown-channel": (("restore", "fax"), ("fax",)),
    "since-forever": (("history", "--since", "forever"), ("--since",)),
    "report-unknown-id": (("report", "99"), ("99",)),
    "report-format": (("report", "1", "--format", "pdf"), ("pdf",)),
}

JOBS: dict[str, Job] = {
    **{f"validate/{c}": Job(c, ("validate",)) for c in CASES},
    **{f"validate-json/{c}": Job(c, ("validate", "--json")) for c in JSON_CASES},
    **{f"outage/{c}": Job(c, OUTAGE, prior=True) for c in OUTAGE_CASES},
    **{f"outage-fresh/{c}": Job(c, OUTAGE) for c in ("yaml_syntax", "missing_template")},
    **{f"cli/{name}/{prior}": Job(None, args, prior=prior == "after-outage")
       for name, (args, _) in CLI_MISTAKES.items() for prior in ("fresh", "after-outage")},
    "outage-json/eta-banana": Job(None, (*CLI_MISTAKES["eta-banana"][0], "--json")),
    "outage-json/unknown-channel": Job(None, (*CLI_MISTAKES["unknown-channel"][0], "--json")),
}


def open_earlier_outage(workdir: Path) -> None:
    eng = build_engine(workdir / CONFIG_NAME)
    try:
        eng.open("email", reason="Mail server down", eta=timedelta(hours=1), by="tester")
        tick(eng)
    finally:
        eng.store.close()
    assert STORE_NAME in store_snapshot(workdir)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    prepared: list[tuple[str, Job, Path, Expect, dict[str, tuple[bytes, int]], list[str]]] = []
    for key, job in JOBS.items():
        workdir = tmp_path_factory.mktemp(key.replace("/", "-"))
        shutil.copyfile(EXAMPLE_CONFIG, workdir / CONFIG_NAME)
        if job.prior:
            open_earlier_outage(workdir)
        before, outbox_before = store_snapshot(workdir), tree(workdir / "outbox")
        expect = CASES[job.case](workdir) if job.case else Expect(file=None)
        prepared.append((key, job, workdir, expect, before, outbox_before))

    def run(item: tuple[str, Job, Path, Expect, dict[str, tuple[bytes, int]], list[str]]) -> Ran:
        _, job, workdir, expect, before, outbox_before = item
        proc = run_cli(workdir, *job.args, now=NOW + timedelta(minutes=5))
        return Ran(workdir, expect, proc, before, outbox_before)

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        results = list(pool.map(run, prepared))
    return {item[0]: result for item, result in zip(prepared, results, strict=True)}


# Assertions ---------------------------------------------------------------------------------------------------


def location_pattern(expect: Expect) -> str:
    """`…/continuity.yaml:14 channels.phone.fallbacks[0]: ` as the message prints it."""
    assert expect.file is not None
    pattern = re.escape(expect.file)
    if expect.line is not None:
        pattern += f":{expect.line}(?!\\d)"
    if expect.field is not None:
        pattern += " " + re.escape(expect.field) + ":"
    return pattern


def assert_clean_input_error(proc: subprocess.CompletedProcess[str], expect: Expect) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert "internal error" not in output
    message = proc.stderr
    assert message.strip(), "the error goes to stderr"
    if expect.file is not None:
        assert re.search(location_pattern(expect), message), f"expected {location_pattern(expect)!r} in:\n{message}"
    for word in expect.words:
        assert word.lower() in message.lower(), f"{word!r} not in:\n{message}"
    for secret in expect.hidden:
        assert secret not in output
    return message


@pytest.mark.parametrize("case", cases(list(CASES)))
def test_validate_rejects(case: str, ran: dict[str, Ran]) -> None:
    r = ran[f"validate/{case}"]

    assert_clean_input_error(r.proc, r.expect)
    assert r.proc.stdout.strip() == ""
    assert store_snapshot(r.workdir) == {}, "validate must never create the store"


@pytest.mark.parametrize("case", OUTAGE_CASES)
def test_outage_with_a_broken_config_leaves_the_store_alone(case: str, ran: dict[str, Ran]) -> None:
    r = ran[f"outage/{case}"]

    assert_clean_input_error(r.proc, r.expect)
    assert STORE_NAME in r.store_before
    assert store_snapshot(r.workdir) == r.store_before
    assert tree(r.workdir / "outbox") == r.outbox_before
    assert not (r.workdir / "site").exists()


@pytest.mark.parametrize("case", ["yaml_syntax", "missing_template"])
def test_outage_with_a_broken_config_creates_no_store(case: str, ran: dict[str, Ran]) -> None:
    r = ran[f"outage-fresh/{case}"]

    assert_clean_input_error(r.proc, r.expect)
    assert store_snapshot(r.workdir) == {}
    assert not (r.workdir / "outbox").exists()


@pytest.mark.parametrize("prior", ["fresh", "after-outage"])
@pytest.mark.parametrize("mistake", list(CLI_MISTAKES))
def test_command_line_mistakes(mistake: str, prior: str, ran: dict[str, Ran]) -> None:
    r = ran[f"cli/{mistake}/{prior}"]
    args, words = CLI_MISTAKES[mistake]

    assert_clean_input_error(r.proc, Expect(file=None, words=words))
    after = store_snapshot(r.workdir)
    if args[0] == "outage" or prior == "after-outage":
        assert after == r.store_before
    else:
        # A read-only command in a fresh folder may create the (empty) store, but records nothing in it.
        assert set(after) <= {STORE_NAME}
    assert tree(r.workdir / "outbox") == r.outbox_before


def test_config_file_that_does_not_exist(workdir: Path, cli: RunCli) -> None:
    missing = workdir / "nowhere" / "missing.yaml"
    for args in (["validate"], ["outage", "phone", "--reason", "x"]):
        proc = cli(*args, config=missing)
        assert_clean_input_error(proc, Expect(file="missing.yaml", words=("not found",)))
    assert tree(workdir) == [CONFIG_NAME]


# --json: errors are JSON on stdout ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(JSON_CASES))
def test_json_errors_are_json_on_stdout(case: str, ran: dict[str, Ran]) -> None:
    r = ran[f"validate-json/{case}"]
    proc, expect = r.proc, r.expect

    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert doc["errors"], doc
    first = doc["errors"][0]
    assert set(first) == {"message", "file", "line", "field"}
    assert expect.file is not None and first["file"].endswith(expect.file)
    assert first["line"] == expect.line
    assert first["field"] == expect.field
    for word in expect.words:
        assert word.lower() in first["message"].lower()
    for secret in expect.hidden:
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("mistake", ["eta-banana", "unknown-channel"])
def test_json_errors_from_outage(mistake: str, ran: dict[str, Ran]) -> None:
    r = ran[f"outage-json/{mistake}"]

    assert r.proc.returncode == 2
    doc = json.loads(r.proc.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert all(word in doc["errors"][0]["message"] for word in CLI_MISTAKES[mistake][1])
    assert store_snapshot(r.workdir) == {}


# Secrets ----------------------------------------------------------------------------------------------------

SECRET = "s3cr3t-value"


def test_a_set_secret_never_reaches_output_outbox_or_store(workdir: Path, cli: RunCli) -> None:
    """The SMTP password is used (a login is attempted against a closed port) but never printed or stored."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: the email sink fails with a retryable error
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    add_email_sink(workdir, "${SMTP_PASSWORD}")
    replace_line(cfg(workdir), "    host: 127.0.0.1", f"    host: 127.0.0.1\n    port: {port}\n    security: none")
    replace_line(cfg(workdir), "  staff: [outbox]", "  staff: [outbox, staff_mail]")
    replace_line(cfg(workdir), "  inline_budget: 10s", "  inline_budget: 0s")
    env = {"SMTP_PASSWORD": SECRET}

    outputs = []
    for args, minutes in ((["validate", "--json"], 0), (["outage", "phone", "--reason", "SIP down", "--json"], 0),
                          (["outage", "phone", "--reason", "SIP down", "--eta", "1h"], 1), (["status", "--json"], 1),
                          (["tick", "--json"], 31), (["restore", "phone", "--json"], 32)):
        proc = cli(*args, env=env, now=NOW + timedelta(minutes=minutes))
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        outputs.append(proc.stdout + proc.stderr)

    # The email steps really ran and failed (so error details were produced and shown).
    status = json.loads(outputs[3])
    (mail_row,) = [s for s in status["open"][0]["steps"] if s["sink"] == "staff_mail" and s["step"] == "staff-runbook"]
    assert mail_row["state"] == "failed" and mail_row["attempts"] >= 1
    for text in outputs:
        assert SECRET not in text
    written = [p for p in workdir.rglob("*") if p.is_file() and p.name != CONFIG_NAME]
    assert any(p.parent.name == "outbox" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
