"""Send marks: a sink's progress through the parts of one action ('ending' just before the point of no return,
'sent' once confirmed), overwritten, forgotten, and settled by a person's word."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.conftest import NOW, Store, StoreFactory

KEY = "s1/open/customer-notice/1/smtp"


def test_no_marks_is_an_empty_mapping(store: Store) -> None:
    assert store.send_marks(KEY) == {}


def test_a_mark_is_set_and_read_back(store: Store) -> None:
    store.set_send_mark(KEY, "anna@example.com", "ending", NOW, "DATA sent")
    store.set_send_mark(KEY, "bela@example.com", "sent", NOW, "250 ok queued as 123")
    store.set_send_mark(KEY, "csilla@example.com", "ending", NOW)

    assert store.send_marks(KEY) == {"anna@example.com": ("ending", "DATA sent"),
                                     "bela@example.com": ("sent", "250 ok queued as 123"),
                                     "csilla@example.com": ("ending", "")}


def test_a_mark_is_overwritten(store: Store) -> None:
    store.set_send_mark(KEY, "anna@example.com", "ending", NOW, "DATA sent")

    store.set_send_mark(KEY, "anna@example.com", "sent", NOW + timedelta(seconds=2), "250 ok")

    assert store.send_marks(KEY) == {"anna@example.com": ("sent", "250 ok")}


def test_none_forgets_a_part(store: Store) -> None:
    store.set_send_mark(KEY, "anna@example.com", "ending", NOW)
    store.set_send_mark(KEY, "bela@example.com", "sent", NOW)

    store.set_send_mark(KEY, "anna@example.com", None, NOW)
    store.set_send_mark(KEY, "nobody@example.com", None, NOW)  # forgetting an unknown part is harmless

    assert store.send_marks(KEY) == {"bela@example.com": ("sent", "")}


def test_marks_belong_to_their_key(store: Store) -> None:
    other = "s1/open/customer-notice/2/smtp"
    store.set_send_mark(KEY, "anna@example.com", "ending", NOW)
    store.set_send_mark(other, "anna@example.com", "sent", NOW)

    store.set_send_mark(other, "anna@example.com", None, NOW)

    assert store.send_marks(KEY) == {"anna@example.com": ("ending", "")}
    assert store.send_marks(other) == {}


def test_a_mark_is_durable_at_once_and_seen_by_another_handle(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()

    one.set_send_mark(KEY, "anna@example.com", "ending", NOW, "DATA sent")

    assert two.send_marks(KEY) == {"anna@example.com": ("ending", "DATA sent")}
    one.close()  # no commit left pending in the handle that wrote it
    assert two.send_marks(KEY) == {"anna@example.com": ("ending", "DATA sent")}


def test_a_mark_set_inside_a_transaction_goes_with_it(store: Store) -> None:
    store.set_send_mark(KEY, "kept@example.com", "sent", NOW)

    with pytest.raises(RuntimeError), store.transaction():
        store.set_send_mark(KEY, "lost@example.com", "ending", NOW)
        store.set_send_mark(KEY, "kept@example.com", None, NOW)
        raise RuntimeError("crash before commit")

    assert store.send_marks(KEY) == {"kept@example.com": ("sent", "")}


def _three_parts(store: Store) -> None:
    store.set_send_mark(KEY, "a@example.com", "ending", NOW, "DATA sent")
    store.set_send_mark(KEY, "b@example.com", "ending", NOW)
    store.set_send_mark(KEY, "c@example.com", "sent", NOW, "250 ok")
    store.set_send_mark("other-key", "a@example.com", "ending", NOW)


def test_settling_as_sent_turns_the_ending_parts_sent(store: Store) -> None:
    _three_parts(store)

    with store.transaction():
        settled = store.settle_send_marks(KEY, True, NOW + timedelta(hours=1))

    assert settled == 2
    assert store.send_marks(KEY) == {"a@example.com": ("sent", "DATA sent"), "b@example.com": ("sent", ""),
                                     "c@example.com": ("sent", "250 ok")}
    assert store.send_marks("other-key") == {"a@example.com": ("ending", "")}
    with store.transaction():
        assert store.settle_send_marks(KEY, True, NOW) == 0  # nothing left to settle


def test_settling_as_not_sent_forgets_the_ending_parts_so_they_are_sent_again(store: Store) -> None:
    _three_parts(store)

    with store.transaction():
        settled = store.settle_send_marks(KEY, False, NOW + timedelta(hours=1))

    assert settled == 2
    assert store.send_marks(KEY) == {"c@example.com": ("sent", "250 ok")}
    assert store.send_marks("other-key") == {"a@example.com": ("ending", "")}
    with store.transaction():
        assert store.settle_send_marks(KEY, False, NOW) == 0


def test_settling_a_key_without_marks_settles_nothing(store: Store) -> None:
    with store.transaction():
        assert store.settle_send_marks("no-such-key", True, NOW) == 0
        assert store.settle_send_marks("no-such-key", False, NOW) == 0
    assert store.send_marks("no-such-key") == {}
