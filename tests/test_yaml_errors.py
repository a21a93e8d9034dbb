"""YAML mistakes point where a person would look: an unclosed quote at the line where it opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.config.yamlsrc import load_yaml_file
from continuity.errors import InputError


@pytest.mark.parametrize("quote", ['"', "'"])
def test_an_unclosed_quote_is_reported_where_it_opened(tmp_path: Path, quote: str) -> None:
    path = tmp_path / "continuity.yaml"
    path.write_text(f"organisation:\n  name: {quote}Shop\n  locales: [en]\nchannels:\n  phone: {{}}\nsinks: {{}}\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml_file(path)
    assert caught.value.location is not None and caught.value.location.line == 2
    assert "never closed" in caught.value.message and "column 9" in caught.value.message


def test_other_syntax_errors_keep_the_parsers_line(tmp_path: Path) -> None:
    path = tmp_path / "continuity.yaml"
    path.write_text("organisation:\n  name: Shop\n  locales: [en\nchannels: {}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml_file(path)
    assert caught.value.location is not None and caught.value.location.line in (3, 4)
    assert "YAML syntax error" in caught.value.message
