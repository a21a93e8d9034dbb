"""Fixtures of the cluster tests: a database of their own on the session's PostgreSQL, and the loopback peers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.kit import Hooks, Peer
from tests.crashkit import SmtpServer


@pytest.fixture
def store_url() -> Iterator[str]:
    from tests.store.pgserver import drop_database, fresh_database

    url = fresh_database()
    yield url
    drop_database(url)


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as s:
        yield s
