"""`${VAR}` and `${file:/path}` references in config values, and secret fields that only accept them.

Secrets never live in the YAML: a secret field given a literal is an error, and a resolved secret is a
pydantic SecretStr, so it prints as '**********' in reprs, logs and --json output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

_REF = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


class FromEnv(str):
    """A string that was produced by resolving `${...}` references (so it may hold a secret)."""

    __slots__ = ()


class EnvRefError(ValueError):
    """A reference that cannot be resolved; the message names the variable or file, never a value."""


def resolve_refs(text: str, environ: Mapping[str, str] | None = None, base_dir: Path | None = None) -> str:
    """Replace every `${VAR}` / `${file:PATH}` in text; `$${` is a literal `${`."""
    env = os.environ if environ is None else environ
    if "${" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        if m.start() > 0 and text[m.start() - 1] == "$":
            return m.group(0)
        ref = m.group(1).strip()
        if ref.startswith("file:"):
            raw = ref[5:].strip()
            path = Path(raw).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise EnvRefError(f"secret file {raw!r} cannot be read ({exc.strerror or exc})") from None
        if not _NAME.match(ref):
            raise EnvRefError(f"bad reference ${{{ref}}}; use ${{ENV_VAR}} or ${{file:/path/to/secret}}")
        if ref not in env:
            raise EnvRefError(f"environment variable {ref} is referenced but not set")
        return env[ref]

    out = _REF.sub(sub, text).replace("$${", "${")
    return FromEnv(out)


def _only_from_env(value: Any) -> Any:
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, FromEnv):
        return SecretStr(str(value))
    raise ValueError(
        "secrets must not be written in the YAML; use ${ENV_VAR} or ${file:/path/to/secret}"
    )


Secret = Annotated[SecretStr, BeforeValidator(_only_from_env)]
"""A config field that holds a secret: only `${...}` references are accepted."""
