"""Free text has limits wherever it comes in: a clear error naming the field and the limit, exit 2, and
nothing recorded; the limits are in `--help`."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.campaigns import phases
from continuity.campaigns.store import runs
from continuity.errors import InputErrors
from tests.campaigns.kit import write
from tests.conftest import NOW, STORE_NAME, MakeEngine, RunCli


@pytest.mark.parametrize(("args", "message"), [
    (["outage", "phone", "--reason", "x" * 501], "--reason is 501 characters long; at most 500 are allowed"),
    (["outage", "phone", "--reason", "trunk", "--by", "b" * 101], "--by is 101 characters long; at most 100"),
    (["restore", "phone", "--note", "n" * 1001], "--note is 1,001 characters long; at most 1,000 are allowed"),
    (["maintenance", "add", "phone", "--start", "1d", "--end", "26h", "--reason", "m" * 501],
     "--reason is 501 characters long; at most 500 are allowed"),
])
def test_too_long_free_text_is_refused_and_changes_nothing(cli: RunCli, workdir: Path, args: list[str],
                                                           message: str) -> None:
    out = cli(*args, now=NOW)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    if (workdir / STORE_NAME).exists():
        status = cli("status", "--json", now=NOW)
        assert '"open": []' in status.stdout


def test_the_limits_are_in_help(cli: RunCli) -> None:
    assert "at most 500 characters" in " ".join(cli("outage", "--help").stdout.split())
    assert "at most 1000 characters" in " ".join(cli("restore", "--help").stdout.split())


def test_a_campaign_text_over_its_limit_names_the_field(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    path = write(workdir, **{"title: Winter Sale": "title: " + "W" * 201})
    with pytest.raises(InputErrors) as caught:
        phases.register(eng, path, by="marketing")
    assert any(" title" in str(e) and "at most 200 characters" in str(e) for e in caught.value.errors), [
        str(e) for e in caught.value.errors]
    assert runs(eng.store, include_finished=True) == []


def test_bytes_that_are_not_text_are_refused_cleanly(cli: RunCli) -> None:
    out = cli("outage", "phone", "--reason", "trunk \udcff down", now=NOW)  # a raw 0xff byte in argv
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--reason is not valid text" in out.stderr and "internal error" not in out.stderr
