"""A request shaped by a template, for public APIs that want their own JSON: Mastodon statuses, Facebook page
posts, and anything else that takes one JSON document per post.

The webhook sink sends *our* document (every locale, facts, a signature) to a receiver the team writes; this
sink sends *their* document to an API someone else wrote, so the body is a template in the sink settings:

    body: '{"status": {{ text }}, "visibility": "public", "language": {{ locale }}}'

Every `{{ … }}` is written as a JSON value (a quoted, escaped string; `null` for none), so a quote or a line
break in a customer notice can never break the document or add a field; do not put quotes around it. The
template runs in the same jinja2 sandbox as the message templates, and what it renders must parse as JSON
(`continuity validate` renders it with sample data). Variables:

    text      the step's text (the `body` block) in the sink's `locale`, or the organisation's first language
    title     the template's title/subject block, "" when it has none
    locale    the language of `text`
    texts     every language's text, by locale code: {{ texts.hu }}
    reply_to  the id of this sink's first post of the situation (from the API's answer), or null: a thread
    key, step, channel, kind, situation_id   the action's identity

Secrets go in `headers` (or the URL) as `${ENV}` references; no outcome or log line names the URL or a header
value. An `Idempotency-Key` header carries the action key (Mastodon drops a repeat within an hour). 2xx
answers listed in `expect` are done (the answer's `id` is recorded in the ledger), 429 waits for
`Retry-After`, 5xx/408/425 and network trouble are retried, anything else fails with the API's message.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from continuity.config.envrefs import EnvHeaders, EnvUrl
from continuity.config.models import Locale
from continuity.redact import Redactor, url_pieces
from continuity.sinks.base import Action, Outcome, Rendered, RenderProblem, Sink, SinkContext, SinkSettings

if TYPE_CHECKING:
    import httpx
    import jinja2

_ID = re.compile(r"; id (\S+)")
_MAX_WAIT = timedelta(hours=24)


class HttpPostSettings(SinkSettings):
    """Where to send, the headers (secrets as ${ENV}), the body template and the answers that mean done."""

    url: EnvUrl
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: EnvHeaders = Field(default_factory=dict)
    body: str = Field(min_length=2)
    expect: list[int] = Field(default_factory=lambda: [200, 201, 202, 204], min_length=1)
    locale: Locale | None = None
    timeout: float = Field(default=10.0, gt=0)
    idempotency_header: str | None = "Idempotency-Key"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("url must start with http:// or https:// and name a host")
        return value

    @field_validator("body")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import jinja2

        try:
            body_template(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"body template, line {exc.lineno}: {exc.message}") from None
        return value

    @field_validator("expect")
    @classmethod
    def _success_codes(cls, value: list[int]) -> list[int]:
        bad = [v for v in value if not 200 <= v < 300]
        if bad:
            raise ValueError(f"expect lists the 2xx answers that mean done; {bad} are not 2xx")
        return value


def _json_value(value: Any) -> str:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value = str(value)  # StrictUndefined raises here, naming the variable
    return json.dumps(value, ensure_ascii=False, default=str)


def body_template(source: str) -> jinja2.Template:
    """The body template in a sandbox where every expression's output is a JSON value."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=_json_value, autoescape=False,
                               keep_trailing_newline=False)
    return env.from_string(source)


def _pick(messages: list[Rendered], locale: str | None) -> Rendered | str:
    if not messages:
        return "the step rendered no message to send"
    if locale is None:
        return messages[0]
    for r in messages:
        if r.locale == locale:
            return r
    return f"the sink sends {locale!r}, but the step was rendered in {', '.join(r.locale for r in messages)}"


def render_body(settings: HttpPostSettings, action: Action, chosen: Rendered, reply_to: str | None) -> str:
    """The document to send; ValueError (with a reason) when the template fails or yields no JSON."""
    import jinja2

    variables = {
        "text": chosen.body.strip(), "title": chosen.title, "locale": chosen.locale,
        "texts": {r.locale: r.body.strip() for r in action.messages}, "reply_to": reply_to,
        "key": action.key, "step": action.step_id, "channel": action.channel, "kind": action.kind,
        "situation_id": action.situation_id,
    }
    try:
        rendered = body_template(settings.body).render(variables)
    except jinja2.UndefinedError as exc:
        raise ValueError(f"the body template failed: {exc.message}") from None
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise ValueError(f"the body template failed: {exc}") from None
    try:
        json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body template does not yield JSON ({exc.msg} at character {exc.pos}); "
                         "write {{ text }} without quotes around it") from None
    return rendered


class HttpPostSink(Sink):
    """Sends one templated JSON request per action to a third-party API (Mastodon, Facebook Graph, …)."""

    type_name = "http_post"
    Settings = HttpPostSettings
    actions = frozenset({"notify", "post"})
    # Whether a repeat is dropped depends on the API (Mastodon honours Idempotency-Key, Facebook does not), so
    # a step interrupted by a crash is left `uncertain` for a person instead of risking a second post.
    idempotent = False
    reversible = False
    description = "a JSON request shaped by a template (Mastodon statuses, Facebook page posts, other APIs)"

    settings: HttpPostSettings

    def __init__(self, name: str, settings: SinkSettings, context: SinkContext, *,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, settings, context)
        self._client = client
        s = self.settings
        # httpx logs every request's URL at INFO, and a Graph URL may carry ?access_token=.
        self._redactor = Redactor({v for v in s.headers.values() if len(v) >= 6} | url_pieces(s.url, 16) | {s.url})

    @classmethod
    def check_rendered(cls, settings: SinkSettings, messages: list[Rendered]) -> list[RenderProblem]:
        assert isinstance(settings, HttpPostSettings)
        chosen = _pick(messages, settings.locale)
        if isinstance(chosen, str):
            return [RenderProblem(chosen, field="locale")]
        sample = Action(key="s0/open/sample/1/sink", operation="apply", kind="post", situation_id=0,
                        step_id="sample", channel="phone", audience="customers", messages=messages)
        try:
            render_body(settings, sample, chosen, reply_to="109876543210")
            render_body(settings, sample, chosen, reply_to=None)
        except ValueError as exc:
            return [RenderProblem(str(exc), field="body")]
        return []

    async def apply(self, action: Action) -> Outcome:
        import httpx

        chosen = _pick(action.messages, self.settings.locale)
        if isinstance(chosen, str):
            return Outcome.fail(chosen)
        try:
            document = render_body(self.settings, action, chosen, self.thread_root(action))
        except ValueError as exc:
            return Outcome.fail(self.hide(str(exc)))
        s = self.settings
        headers = dict(s.headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        if s.idempotency_header:
            headers[s.idempotency_header] = action.key
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        self._redactor.install(["httpx"])
        try:
            response = await self._client.request(s.method, s.url, content=document.encode("utf-8"),
                                                  headers=headers, timeout=s.timeout)
        except httpx.TimeoutException:
            return Outcome.retry(f"{self.name}: no answer within {s.timeout:g}s")
        except httpx.TransportError as exc:
            return Outcome.retry(f"{self.name}: cannot connect ({type(exc).__name__})")
        return self._judge(response)

    async def aclose(self) -> None:
        self._redactor.remove()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def hide(self, text: str) -> str:
        return self._redactor.hide(text)

    def thread_root(self, action: Action) -> str | None:
        """The id the API gave this sink's first post of the situation (for replies, e.g. Mastodon)."""
        for row in action.earlier:
            if row.state in ("done", "uncertain") and row.phase != "undo":
                m = _ID.search(row.detail)
                if m:
                    return m.group(1)
        return None

    def _judge(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        answer = f"{self.name}: HTTP {status} {response.reason_phrase}".rstrip()
        doc: Any = None
        with contextlib.suppress(ValueError):
            doc = response.json()
        if status in self.settings.expect:
            post_id = doc.get("id") if isinstance(doc, dict) else None
            return Outcome.success(answer + (f"; id {post_id}" if isinstance(post_id, str | int) else ""))
        said = self.hide(_api_message(doc))[:300]
        if said:
            answer += f": {said}"
        if status == 429:
            return Outcome.retry(answer, _retry_after(response.headers.get("Retry-After"), self.context.clock.now()))
        if status >= 500 or status in (408, 425):
            return Outcome.retry(answer)
        if 300 <= status < 400:
            return Outcome.fail(f"{answer}; redirects are not followed, configure the final URL")
        if 200 <= status < 300:
            return Outcome.fail(f"{answer}; not one of the answers listed in `expect`")
        return Outcome.fail(answer)


def _api_message(doc: Any) -> str:
    """The reason in an API's error document: Mastodon {"error": "..."}, Graph {"error": {"message": ...}}."""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or "")
    for key in ("error_description", "error", "detail", "message"):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    return ""


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or as an HTTP date (RFC 9110), within a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        wait = (when if when.tzinfo else when.replace(tzinfo=UTC)) - now
    return min(max(wait, timedelta(seconds=1)), _MAX_WAIT)
