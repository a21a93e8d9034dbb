"""`continuity.store.protocol.Store` is the whole contract, and SqliteStore keeps it.

Structural checks at run time (no mypy): every member of the Protocol exists on SqliteStore with a compatible
signature (same parameters, kinds, defaults and types; extra parameters only with defaults), every public
method of SqliteStore is in the Protocol, and every attribute the code outside continuity/store/ uses on a store
object is in the Protocol, with none of them reaching into the connection or running SQL.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.store import Store as ExportedStore
from continuity.store.protocol import Store
from continuity.store.sqlite import SqliteStore
from tests.store.conftest import Store as AnyStore

PACKAGE = Path(__file__).resolve().parents[2] / "continuity"
OUTSIDE_STORE = sorted(p for p in PACKAGE.rglob("*.py") if (PACKAGE / "store") not in p.parents)
# Protocol machinery, not members.
_PROTOCOL_INTERNALS = {"_is_protocol", "_is_runtime_protocol"}


def _methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {name: value for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_") and name not in _PROTOCOL_INTERNALS}


PROTOCOL_METHODS = _methods(Store)
PROTOCOL_DATA = set(typing.get_type_hints(Store))
MEMBERS = set(PROTOCOL_METHODS) | PROTOCOL_DATA


def _public_methods_of_sqlite_store() -> set[str]:
    return {name for name, value in inspect.getmembers(SqliteStore, callable) if not name.startswith("_")}


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(func)


def _is_context_manager_function(func: Callable[..., Any]) -> bool:
    """A @contextmanager generator function: its hint says Iterator[T], callers get a context manager of T."""
    return hasattr(func, "__wrapped__") and inspect.isgeneratorfunction(inspect.unwrap(func))


def _return_compatible(proto: Any, impl: Any, impl_func: Callable[..., Any]) -> bool:
    if proto == impl:
        return True
    if typing.get_origin(proto) is contextlib.AbstractContextManager and _is_context_manager_function(impl_func):
        return typing.get_origin(impl) is Iterator and typing.get_args(impl) == typing.get_args(proto)
    return False


def _incompatibilities(name: str) -> list[str]:
    proto_func, impl_func = PROTOCOL_METHODS[name], getattr(SqliteStore, name)
    proto_sig, impl_sig = inspect.signature(proto_func), inspect.signature(impl_func)
    proto_hints, impl_hints = _hints(proto_func), _hints(impl_func)
    problems: list[str] = []
    proto_params = list(proto_sig.parameters.values())
    impl_params = impl_sig.parameters
    positional = [p.name for p in impl_params.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for index, p in enumerate(proto_params):
        q = impl_params.get(p.name)
        if q is None:
            if p.kind is p.VAR_KEYWORD and any(x.kind is x.VAR_KEYWORD for x in impl_params.values()):
                continue
            problems.append(f"{name}: no parameter {p.name!r}")
            continue
        if q.kind is not p.kind:
            problems.append(f"{name}: {p.name!r} is {q.kind.description}, the protocol says {p.kind.description}")
        elif p.kind is p.POSITIONAL_OR_KEYWORD and positional.index(p.name) != index:
            problems.append(f"{name}: {p.name!r} is not in position {index}")
        if p.default is not q.default and p.default != q.default:
            problems.append(f"{name}: {p.name!r} defaults to {q.default!r}, the protocol says {p.default!r}")
        if p.name in proto_hints and proto_hints[p.name] != impl_hints.get(p.name):
            problems.append(f"{name}: {p.name!r} is {impl_hints.get(p.name)}, the protocol says "
                            f"{proto_hints[p.name]}")
    for q in impl_params.values():
        if q.name not in proto_sig.parameters and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD) \
                and q.default is q.empty:
            problems.append(f"{name}: required parameter {q.name!r} is not in the protocol")
    if not _return_compatible(proto_hints.get("return"), impl_hints.get("return"), impl_func):
        problems.append(f"{name}: returns {impl_hints.get('return')}, the protocol says {proto_hints.get('return')}")
    return problems


@pytest.mark.parametrize("name", sorted(PROTOCOL_METHODS))
def test_sqlite_store_has_each_protocol_method_with_a_compatible_signature(name: str) -> None:
    assert callable(getattr(SqliteStore, name, None)), f"SqliteStore has no {name}"
    assert _incompatibilities(name) == []


def test_the_signature_check_catches_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: a different parameter kind, default, type or return type is reported."""

    class Wrong:
        def find_open(self, kind: str, *, channel: str) -> None:
            return None

        def maintenance(self, include_ended: int = 1) -> list[str]:
            return []

        def due_steps(self, now: Any, situation_ids: Any, extra: int) -> Any:
            return None

    for name in ("find_open", "maintenance", "due_steps"):
        monkeypatch.setattr(SqliteStore, name, getattr(Wrong, name))
    problems = _incompatibilities("find_open") + _incompatibilities("maintenance") + _incompatibilities("due_steps")
    for expected in ("'channel' is keyword-only", "find_open: returns <class 'NoneType'>",
                     "'include_ended' defaults to 1", "'include_ended' is <class 'int'>",
                     "maintenance: returns list[str]", "'situation_ids' defaults to", "required parameter 'extra'"):
        assert any(expected in p for p in problems), (expected, problems)


def test_every_public_method_of_sqlite_store_is_in_the_protocol() -> None:
    """A method added to SqliteStore is part of what another implementation must do: add it to Store too."""
    assert _public_methods_of_sqlite_store() - set(PROTOCOL_METHODS) == set()


def test_every_protocol_member_says_what_it_promises() -> None:
    undocumented = [name for name, func in PROTOCOL_METHODS.items() if not (func.__doc__ or "").strip()]
    assert undocumented == []


def test_the_protocol_is_exported_by_the_package() -> None:
    assert ExportedStore is Store


def test_a_store_of_every_implementation_has_every_member(store: AnyStore) -> None:
    assert isinstance(store, Store)  # runtime_checkable: every member, data ones included, is there
    assert isinstance(store.path, Path)


# what the rest of continuity uses ---------------------------------------------------------------------------


def _store_attributes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, attribute) of every `<…>store.<attribute>` in code: `store.x`, `self.store.x`, `engine.store.x`, but
    not the config's `config.store.x` (comments and strings are not code)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id == "store":
            yield node.lineno, node.attr
        elif isinstance(owner, ast.Attribute) and owner.attr == "store":
            parent = owner.value
            if not (isinstance(parent, ast.Attribute) and parent.attr == "config") and not (
                    isinstance(parent, ast.Name) and parent.id == "config"):
                yield node.lineno, node.attr


def _uses() -> dict[str, list[str]]:
    uses: dict[str, list[str]] = {}
    for path in OUTSIDE_STORE:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, attr in _store_attributes(tree):
            uses.setdefault(attr, []).append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return uses


def test_everything_used_on_a_store_outside_the_store_package_is_in_the_protocol() -> None:
    uses = _uses()
    assert "transaction" in uses and "steps_for" in uses  # the scan does see the callers
    missing = {attr: where for attr, where in uses.items() if attr not in MEMBERS}
    assert missing == {}


def test_nothing_outside_the_store_package_touches_the_connection_or_runs_sql() -> None:
    uses = _uses()
    assert uses.get("conn", []) == []
    executes = [f"{p.relative_to(PACKAGE.parent)}:{n}" for p in OUTSIDE_STORE
                for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "execute(" in line]
    assert executes == []
