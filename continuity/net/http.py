"""The httpx client of an HTTP-speaking probe: one shared by many probes (its owner closes it), or one the
probe makes on first use and closes itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class ClientSlot:
    """`get()` the shared client if there is one, else this probe's own (made lazily with `options`)."""

    def __init__(self, shared: httpx.AsyncClient | None, **options: Any) -> None:
        self._shared = shared
        self._own: httpx.AsyncClient | None = None
        self._options = options

    def get(self) -> httpx.AsyncClient:
        if self._shared is not None:
            return self._shared
        if self._own is None:
            import httpx

            self._own = httpx.AsyncClient(**self._options)
        return self._own

    async def aclose(self) -> None:
        """Close the client this probe made; a shared one belongs to whoever passed it in."""
        if self._own is not None:
            await self._own.aclose()
            self._own = None
