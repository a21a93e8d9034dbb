"""The daemon's side of the auto-responder: one Responder task per `autoreply` mailbox whose ledger says on.

`sync()` runs when the daemon starts and on each of its resyncs: a mailbox that turned on gets a responder,
one that turned off is told to stop (it also notices by itself within one poll interval). Nothing here
decides anything: the ledger does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from continuity.autoreply.state import active_parts

if TYPE_CHECKING:
    from continuity.autoreply.responder import Responder
    from continuity.clock import Clock
    from continuity.config.loader import LoadedConfig
    from continuity.sinks.autoreply import AutoreplySettings
    from continuity.store.sqlite import SqliteStore


class Supervisor:
    def __init__(self, loaded: LoadedConfig, store: SqliteStore, clock: Clock, log: logging.Logger,
                 registry: Any = None) -> None:
        from continuity.sinks.autoreply import AutoreplySettings

        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.log = log
        self.mailboxes: dict[str, AutoreplySettings] = {
            name: inst.settings for name, inst in loaded.sinks.items()
            if inst.cls.type_name == "autoreply" and isinstance(inst.settings, AutoreplySettings)
        }
        self.running: dict[str, tuple[Responder, asyncio.Task[None]]] = {}
        self.counter: Any = None
        if registry is not None and self.mailboxes:
            from prometheus_client import Counter

            self.counter = Counter("continuity_autoreply_messages", "Customer messages the auto-responder "
                                   "decided about, by outcome", ["mailbox", "outcome"], registry=registry)

    def sync(self) -> None:
        """Start a responder for every mailbox that is on and has none running."""
        from continuity.autoreply.responder import Responder

        for name, settings in self.mailboxes.items():
            current = self.running.get(name)
            alive = current is not None and not current[1].done()
            on = bool(active_parts(self.store, name))
            if on and not alive:
                responder = Responder(name, settings, self.loaded, self.store, self.clock, self.log,
                                      on_outcome=self._outcome(name))
                self.running[name] = (responder, asyncio.ensure_future(self._run(responder)))
            elif not on and alive and current is not None:
                current[0].stop()

    def _outcome(self, name: str) -> Any:
        def count(outcome: str) -> None:
            if self.counter is not None:
                self.counter.labels(name, outcome.split(":", 1)[0]).inc()

        return count

    async def _run(self, responder: Responder) -> None:
        try:
            await responder.run()
        except Exception:
            self.log.exception(f"{responder.name}: the responder failed",
                               extra={"event": "autoreply.error", "fields": {"mailbox": responder.name}})

    async def stop(self, grace: float) -> None:
        """Stop every responder; answers being sent get `grace` seconds to finish."""
        for responder, _ in self.running.values():
            responder.stop()
        tasks = [task for _, task in self.running.values() if not task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self.running.clear()
