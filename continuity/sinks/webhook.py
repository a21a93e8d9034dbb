"""POST each action as JSON to a URL the team controls (a status page, a CRM, their own glue code).

The receiver deduplicates by the `Idempotency-Key` header, which is the action key and so stable across
retries and restarts; with a `secret` the body is signed (`X-Continuity-Signature: sha256=<hex HMAC>` of the
exact bytes sent) so the receiver can tell our requests from anyone else's. Undo sends the same document with
`"operation": "undo"`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from continuity.config.envrefs import EnvHeaders, EnvUrl, Secret
from continuity.sinks.base import Action, Outcome, Sink, SinkContext, SinkSettings

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Continuity-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Headers the sink owns: a configured header of the same name would break dedup or the signature.
_RESERVED = frozenset({"content-type", IDEMPOTENCY_HEADER.lower(), SIGNATURE_HEADER.lower()})


class WebhookSettings(SinkSettings):
    """Where to POST, how long to wait, and the optional signing key."""

    url: EnvUrl
    secret: Secret | None = None
    timeout: float = Field(default=10.0, gt=0)
    headers: EnvHeaders = Field(default_factory=dict)


class WebhookSink(Sink):
    """POSTs the rendered action as JSON; 2xx is done, 5xx/429/network trouble is retried, other 4xx fail."""

    type_name = "webhook"
    reads_earlier = False  # one POST per row, keyed by the row (see Runner._reads_earlier)
    Settings = WebhookSettings
    actions = frozenset({"notify", "post", "notice", "banner"})
    idempotent = True
    reversible = True
    description = "a signed JSON POST to a URL of your own, deduplicated by Idempotency-Key"

    settings: WebhookSettings

    def __init__(
        self,
        name: str,
        settings: SinkSettings,
        context: SinkContext,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name, settings, context)
        # A client passed in (to pool connections, or a test's) is used for every request and closed by
        # aclose() like one made here: the runner calls aclose() once, when nothing will post any more.
        self._client = client

    async def apply(self, action: Action) -> Outcome:
        return await self._post(action, "apply")

    async def undo(self, action: Action) -> Outcome:
        return await self._post(action, "undo")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def body(self, action: Action, operation: str) -> bytes:
        """The exact bytes sent (and signed)."""
        doc: dict[str, Any] = {
            "operation": operation,
            "key": action.key,
            "kind": action.kind,
            "situation_id": action.situation_id,
            "step_id": action.step_id,
            "channel": action.channel,
            "audience": action.audience,
            "messages": [{**r.blocks, "locale": r.locale} for r in action.messages],
            "facts": action.facts,
        }
        if action.target_key is not None:
            doc["target_key"] = action.target_key
        # default=str: facts may carry datetimes or paths; the receiver gets their text form.
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    def request_headers(self, action: Action, body: bytes) -> dict[str, str]:
        headers = {k: v for k, v in self.settings.headers.items() if k.lower() not in _RESERVED}
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers[IDEMPOTENCY_HEADER] = action.key
        if self.settings.secret is not None:
            headers[SIGNATURE_HEADER] = "sha256=" + sign(self.settings.secret.get_secret_value(), body)
        return headers

    async def _post(self, action: Action, operation: str) -> Outcome:
        import httpx

        body = self.body(action, operation)
        headers = self.request_headers(action, body)
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        # Details name the sink and the status, never the URL: webhook URLs often carry a token.
        try:
            response = await self._client.post(
                self.settings.url, content=body, headers=headers, timeout=self.settings.timeout
            )
        except httpx.TimeoutException:
            return Outcome.retry(f"webhook did not answer within {self.settings.timeout:g}s")
        except httpx.UnsupportedProtocol:
            return Outcome.fail("webhook url must start with http:// or https://")
        except httpx.InvalidURL:
            return Outcome.fail("webhook url is not a valid URL")
        except httpx.ConnectError:
            return Outcome.retry("cannot connect to the webhook (refused, unreachable or TLS failure)")
        except httpx.TransportError as exc:
            return Outcome.retry(f"webhook connection failed ({type(exc).__name__})")
        return _judge(response.status_code, response.reason_phrase)


def sign(key: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of body; receivers recompute it over the raw request body."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _judge(status: int, reason: str) -> Outcome:
    answer = f"webhook answered HTTP {status} {reason}".rstrip()
    if 200 <= status < 300:
        return Outcome.success(answer)
    if status >= 500 or status in (408, 425, 429):
        return Outcome.retry(answer)
    if 300 <= status < 400:
        return Outcome.fail(f"{answer}; redirects are not followed, configure the final URL")
    return Outcome.fail(answer)
