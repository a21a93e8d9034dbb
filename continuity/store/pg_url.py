"""PostgreSQL store URLs: what libpq is given, and what a person may be shown (never the password)."""

from __future__ import annotations

from typing import Any

SCHEMES = ("postgresql://", "postgres://")
INSTALL_HINT = "pip install 'continuity[postgres]'"


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def _parts(url: str) -> dict[str, Any]:
    """libpq's own reading of the URL (percent-decoding included); {} when it cannot read it."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # no psycopg: the caller says what to install
        return {}
    try:
        return dict(conninfo_to_dict(url))
    except Exception:  # noqa: BLE001 (a malformed URL is reported by the connection attempt)
        return {}


def safe_url(url: str) -> str:
    """The URL as it may be printed: the password (in the user part or a `password=` parameter) hidden."""
    if not is_postgres_url(url):
        return url
    scheme, rest = url.split("://", 1)
    authority, sep, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    if "?" in tail:
        path, query = tail.split("?", 1)
        query = "&".join("password=***" if p.lower().startswith("password=") else p for p in query.split("&"))
        tail = f"{path}?{query}"
    return f"{scheme}://{userinfo}{at}{hostport}{sep}{tail}"


def label(url: str) -> str:
    """A short name for messages: `DB on HOST:PORT`."""
    parts = _parts(url)
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    db = parts.get("dbname") or parts.get("user") or "postgres"
    return f"{db} on {host}:{port}"
