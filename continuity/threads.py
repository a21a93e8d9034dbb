"""Blocking network calls (imaplib, tweepy) run in daemon threads that a stopping process can abandon.

`asyncio.to_thread` uses the loop's default executor, whose worker threads the interpreter joins at exit: a
probe stuck on a server that accepted the connection and never speaks then holds a stopping daemon for its
whole timeout (30 s and more), past the 10 s a service manager allows. Each call here gets its own daemon
thread instead. The calls keep their own socket timeouts, so an abandoned thread still ends by itself; what
it would have returned is dropped, exactly as for a coroutine cancelled mid-await.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting coroutine was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """`await asyncio.to_thread(func, *args)`, but in a daemon thread the interpreter does not wait for."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = func(*args)
        except BaseException as exc:  # handed to the awaiting coroutine, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=run, name=f"continuity-io-{getattr(func, '__name__', 'call')}", daemon=True).start()
    return await future
