"""`${VAR}` and `${file:/path}` references in config values, and secret fields that only accept them.

Secrets never live in the YAML: a secret field given a literal is an error, and a resolved secret is a
pydantic SecretStr, so it prints as '**********' in reprs, logs and --json output.

Some values are credentials only in part (an apprise URL, an `Authorization` header, a URL with
`?access_token=`) and the code that sends them needs the plain text: `EnvSourced`, `EnvHeaders` and `EnvUrl`
demand a `${...}` reference where the credential sits, and store what it resolved to as `Masked`, a str whose
repr is '**********'.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BeforeValidator, SecretStr, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

_REF = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


class FromEnv(str):
    """A string that was produced by resolving `${...}` references (so it may hold a secret).

    `source` is the text as written, references unresolved, so a check can tell which part was literal;
    None when unknown (the whole value then counts as coming from a reference).
    """

    source: str | None

    def __new__(cls, value: str, source: str | None = None) -> FromEnv:
        self = super().__new__(cls, value)
        self.source = source
        return self


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
    return FromEnv(out, text)


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


# ---- values that carry a credential in part: the credential part must be a reference ----

HIDDEN = "**********"
# Header names whose value is a credential; Idempotency-Key is a deduplication id, not a key.
_SECRET_HEADER = re.compile(r"(?i)^(authorization|proxy-authorization|cookie)$|token|key|secret|auth")
_NOT_SECRET_HEADER = frozenset({"idempotency-key"})
# Query parameter names that carry a credential (?access_token=, ?api_key=, ?sig=, ?password=, ...).
_SECRET_PARAM = re.compile(r"(?i)token|key|secret|passw|^pwd$|^sig$|signature|auth|credential")
_HOW = "write it as ${ENV_VAR} or ${file:/path/to/secret}"


class Masked(str):
    """A value resolved from `${...}` that may hold a credential: usable as text, shown as '**********'."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(HIDDEN)

    def strip(self, chars: str | None = None) -> Masked:
        """Stays masked through the usual normalisation of a URL."""
        return Masked(str.strip(self, chars))


def has_ref(text: str) -> bool:
    """True when text holds at least one `${...}` reference (`$${` is an escaped literal, not one)."""
    return any(m.start() == 0 or text[m.start() - 1] != "$" for m in _REF.finditer(text))


def _written_with_ref(value: Any) -> bool:
    if not isinstance(value, FromEnv):
        return False
    return value.source is None or has_ref(value.source)


def _refused(message: str, field: str | None = None) -> PydanticCustomError:
    """An error the loader places on `field` inside the validated value when given (a header's own line)."""
    return PydanticCustomError("env_ref_required", message, {"field": field} if field is not None else {})


def _env_sourced(value: Any) -> Any:
    if isinstance(value, Masked) or not isinstance(value, str):
        return value
    if not _written_with_ref(value):
        raise _refused(f"the URL embeds its token: {_HOW}, whole or in part (slack://${{SLACK_TOKENS}} or "
                       "${SLACK_URL})")
    return Masked(value)


def _wrap_env_sourced(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return _keep_mask(value, handler(_env_sourced(value)))


EnvSourced = Annotated[str, WrapValidator(_wrap_env_sourced)]
"""A value that always embeds a credential (an apprise URL): it must be written with a `${...}` reference."""


def secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential (Authorization, Cookie, X-Api-Key, ...)."""
    return name.lower() not in _NOT_SECRET_HEADER and bool(_SECRET_HEADER.search(name))


def _env_headers(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, dict):
        for name, text in value.items():
            if (isinstance(name, str) and isinstance(text, str) and not isinstance(text, Masked)
                    and secret_header(name) and not _written_with_ref(text)):
                raise _refused(f'header {name} carries a credential: {_HOW} (Authorization: "Bearer ${{TOKEN}}")',
                               name)
    out = handler(value)
    if not isinstance(value, dict) or not isinstance(out, dict):
        return out
    return {k: Masked(v) if isinstance(value.get(k), FromEnv | Masked) or secret_header(k) else v
            for k, v in out.items()}


EnvHeaders = Annotated[dict[str, str], WrapValidator(_env_headers)]
"""HTTP headers: a credential-bearing header's value must come from a `${...}` reference; those are masked."""


def url_credential(text: str) -> str | None:
    """What in a URL, as written, is a credential not written as a reference; None when there is none."""
    rest = text.split("://", 1)[1] if "://" in text else ""
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo = netloc.rpartition("@")[0]
    if userinfo and not has_ref(userinfo):
        return "a user name and password (user:pass@)"
    query = text.split("#", 1)[0].partition("?")[2]
    for name, val in parse_qsl(query, keep_blank_values=True):
        if val and _SECRET_PARAM.search(name) and not has_ref(val):
            return f"a credential in its query ({name}=…)"
    return None


def _env_url(value: Any) -> Any:
    if not isinstance(value, str) or isinstance(value, Masked):
        return value
    if isinstance(value, FromEnv):
        written = value.source
        if written is None:
            return Masked(value)
    else:
        written = value
    what = url_credential(written)
    if what is not None:
        raise _refused(f"the url embeds {what}: {_HOW} in its place "
                       "(https://example.com/feed?access_token=${PAGE_TOKEN})")
    return Masked(value) if isinstance(value, FromEnv) else value


def _keep_mask(raw: Any, out: Any) -> Any:
    return Masked(out) if isinstance(raw, Masked | FromEnv) and isinstance(out, str) else out


def _wrap_env_url(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return _keep_mask(value, handler(_env_url(value)))


EnvUrl = Annotated[str, WrapValidator(_wrap_env_url)]
"""A URL that may carry a credential (user:pass@, ?access_token=): only through a `${...}` reference; an URL
written with a reference is masked."""
