"""daemon.public is checked like the rest of the config: every mistake names file, line and field, exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from continuity.config.loader import load_config
from continuity.errors import InputError
from tests.conftest import Configure, RunCli


@pytest.mark.parametrize(("public", "field", "message"), [
    ({"cors_origins": ["shop.example.test"]}, "daemon.public.cors_origins", "is not an origin"),
    ({"cors_origins": ["https://shop.example.test/p"]}, "daemon.public.cors_origins", "without a path"),
    ({"channels": ["phone", "fax"]}, "daemon.public.channels[1]", "unknown channel 'fax'"),
    ({"voice_locales": ["de"]}, "daemon.public.voice_locales[0]", "'de' is not one of organisation.locales"),
    ({"banner_poll": "1s"}, "daemon.public.banner_poll", "at least 5s"),
    ({"voice_next_url": "javascript:alert(1)"}, "daemon.public.voice_next_url", "should match pattern"),
    ({"cors_origin": ["*"]}, "daemon.public.cors_origin", "unknown key"),
])
def test_mistakes_are_located(configure: Configure, public: dict[str, Any], field: str, message: str) -> None:
    path = configure(lambda cfg: cfg["daemon"].update(public=public))
    with pytest.raises(InputError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:" in text or f"{path.name}:" in text
    assert field in text and message in text


def test_the_cli_says_where_and_exits_2(configure: Configure, cli: RunCli, workdir: Path) -> None:
    configure(lambda cfg: cfg["daemon"].update(public={"channels": ["fax"]}))
    proc = cli("validate")
    assert proc.returncode == 2
    assert "continuity.yaml:" in proc.stderr and "daemon.public.channels[0]: unknown channel 'fax'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "continuity.db").exists()
