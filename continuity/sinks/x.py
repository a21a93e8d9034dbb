"""Public posts on X (Twitter) through tweepy: one thread per situation, checked for length before sending.

Which text: the `body` of the step's template in one language, the sink's `locale`, or without it the
organisation's first language (the first of `organisation.locales`, the one every sink leads with). X has
no per-post language field, so a multilingual shop that wants a post per language configures one `x` sink
per account, each with its own `locale`.

Threads: the first post of a situation stands alone; every later post of the same situation (an ETA update,
"resolved") replies to that first post, so customers find the whole story under one tweet. The post's id is
in the ledger row's detail ("posted https://x.com/i/status/<id>") and in the action's send mark (below); the
runner hands the sink its earlier rows of the situation (`Action.earlier`).

Retries and restarts never post twice. Each action's post is a send mark in the store (part "post"):
`ending` just before the request goes to X, `sent` with the post's URL once X answered with its id. A
retry, or the step run again after a crash (the sink is marked idempotent), answers a posted action from
its mark, and a restarted process still finds the id there for the thread and for undo. A post whose
request was cut off (the process was killed while X had it) is `uncertain` for a person to settle, never
posted again on our own. A request X answered with an error, or that never reached X, is forgotten and
tried again; so is one whose answer was lost to a timeout, and there X itself refuses the repeat if the
first went out: it answers 403 "duplicate content" to the same text from the same account, which this sink
takes as "already posted" (the post id is then unknown, so a later update starts a new thread rather than
guessing). Templates render the same text for the same situation revision, which is what makes that
refusal reliable. Posts deleted on undo are marked too (part "deleted <id>" of the row that posted them),
so no later reply hangs under a deleted post and a retried undo deletes only what is left.

Errors: 429 waits for X's rate-limit reset (`x-rate-limit-reset`, or the 24-hour user limit's reset when
that one is used up) before retrying; 5xx and network trouble are retried with the runner's backoff;
401 and other 4xx fail at once with X's reason. The four credentials come only from `${ENV}` or
`${file:…}`, are never part of an outcome, and are blanked in tweepy's, requests-oauthlib's and oauthlib's
debug logs while this sink talks to X.
"""

from __future__ import annotations

import contextlib
import functools
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from continuity.config.envrefs import Secret
from continuity.config.models import Locale
from continuity.redact import Redactor
from continuity.sinks.base import Action, Outcome, Rendered, RenderProblem, Sink, SinkContext, SinkSettings
from continuity.sinks.xtext import LIMIT, too_long
from continuity.threads import in_thread

if TYPE_CHECKING:
    import tweepy

STATUS_URL = "https://x.com/i/status/{id}"
# The send-mark part of an action's post, and of a post deleted on undo (under the key of the row that posted it).
POST = "post"
DELETED = "deleted {id}"
_POSTED = re.compile(r"x\.com/i/status/(\d+)")
# Loggers that see credentials or signatures while a request is signed and sent (a filter on a logger does not
# apply to records of its children, so each is named).
_LOGGERS = (
    "tweepy.client",
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "urllib3.connectionpool",
)
# X's rate-limit resets are at most a day away; anything further is a clock problem, not a reason to wait.
_MAX_WAIT = timedelta(hours=24)


class XSettings(SinkSettings):
    """The app's OAuth 1.0a keys and the user's access token (all from ${ENV}), and how to post."""

    consumer_key: Secret
    consumer_secret: Secret
    access_token: Secret
    access_token_secret: Secret
    locale: Locale | None = None
    delete_on_undo: bool = False
    timeout: float = Field(default=15.0, gt=0)


def _redactor(secrets: list[str]) -> Redactor:
    """Blanks the credentials (and their percent-encoded forms, as they appear in signed headers)."""
    from urllib.parse import quote

    return Redactor({p for s in secrets if s for p in (s, quote(s, safe=""))})


def pick(messages: list[Rendered], locale: str | None) -> Rendered | str:
    """The rendering to post, or why there is none."""
    if not messages:
        return "the step rendered no message to post"
    if locale is None:
        return messages[0]
    for r in messages:
        if r.locale == locale:
            return r
    have = ", ".join(r.locale for r in messages)
    return f"the x sink posts in {locale!r}, but the step was rendered in {have} (organisation.locales)"


def post_text(rendered: Rendered) -> str:
    return rendered.body.strip()


def posted_id(detail: str) -> str | None:
    """The post id in a ledger detail written by this sink."""
    m = _POSTED.search(detail)
    return m.group(1) if m else None


class XSink(Sink):
    """Posts the step's text on X; later posts of a situation reply to its first one."""

    type_name = "x"
    Settings = XSettings
    actions = frozenset({"post", "notice"})
    # Re-running an action is safe: its post is in the store's send marks (posted: answered from the mark;
    # cut off while X had the request: reported uncertain, never posted again), and a repeat after a lost
    # answer is refused by X as a duplicate.
    idempotent = True
    # A `notice` routed here is switched off on close: its posts are deleted when delete_on_undo is set,
    # otherwise left up (and the ledger says so).
    reversible = True
    description = "a post on X (Twitter) through tweepy, threaded per situation, length-checked"

    settings: XSettings

    def __init__(self, name: str, settings: SinkSettings, context: SinkContext) -> None:
        super().__init__(name, settings, context)
        s = self.settings
        self._redactor = _redactor([v.get_secret_value() for v in
                                    (s.consumer_key, s.consumer_secret, s.access_token, s.access_token_secret)])
        self._client: tweepy.Client | None = None

    # validate ------------------------------------------------------------------------------------------------

    @classmethod
    def check_rendered(cls, settings: SinkSettings, messages: list[Rendered]) -> list[RenderProblem]:
        assert isinstance(settings, XSettings)
        chosen = pick(messages, settings.locale)
        if isinstance(chosen, str):
            return [RenderProblem(chosen, field="locale")]
        problem = too_long(post_text(chosen))
        if problem is None:
            return []
        return [RenderProblem(f"the X post would be {problem}", locale=chosen.locale)]

    # apply / undo ----------------------------------------------------------------------------------------------

    async def apply(self, action: Action) -> Outcome:
        chosen = pick(action.messages, self.settings.locale)
        if isinstance(chosen, str):
            return Outcome.fail(chosen)
        text = post_text(chosen)
        if not text:
            return Outcome.fail(f"step {action.step_id}: the {chosen.locale} text is empty; nothing to post")
        problem = too_long(text, LIMIT)
        if problem is not None:
            return Outcome.fail(f"step {action.step_id}: the {chosen.locale} post is {problem}; shorten its template")
        marks = self.context.marks
        state = marks.state(action.key, POST)
        if state == "sent":
            done = posted_id(marks.detail(action.key, POST))
            if done is not None:
                return Outcome.success(f"posted {STATUS_URL.format(id=done)} (already, by an earlier attempt)")
            return Outcome.success("already posted by an earlier attempt; post id unknown")
        if state == "ending":
            return Outcome.unsure("the post was being sent to X when the sending was cut off: it may be up; check "
                                  "the account, then `continuity settle ID sent` or `continuity settle ID resend`")
        root = self.thread_root(action)
        client = self._connect()
        # Past this point X may have the post, whatever happens to this process.
        marks.ending(action.key, POST)
        try:
            response = await in_thread(
                functools.partial(client.create_tweet, text=text, in_reply_to_tweet_id=root, user_auth=True)
            )
        except Exception as exc:
            outcome = self._judge(exc, posting=True)
            if outcome.ok:  # X refused the same text as a duplicate: an earlier attempt is up
                marks.sent(action.key, POST)
            else:  # X said no, or never got it, or its answer was lost (a repeat is refused as a duplicate)
                marks.forget(action.key, POST)
            return outcome
        tweet_id = str(response.data["id"])
        marks.sent(action.key, POST, STATUS_URL.format(id=tweet_id))
        where = f" in reply to {root}" if root else ""
        return Outcome.success(f"posted {STATUS_URL.format(id=tweet_id)}{where} ({chosen.locale})")

    async def undo(self, action: Action) -> Outcome:
        if not self.settings.delete_on_undo:
            return Outcome.success("the post stays up (delete_on_undo is off for this sink)")
        posts = [(key, i) for key, i in self.posts_of_step(action) if not self._is_deleted(key, i)]
        if not posts:
            return Outcome.success("nothing to delete: no post of this step is on record")
        client = self._connect()
        for key, tweet_id in posts:
            try:
                await in_thread(functools.partial(client.delete_tweet, tweet_id, user_auth=True))
            except Exception as exc:
                import tweepy

                if not isinstance(exc, tweepy.NotFound):  # already gone is what undo wants
                    return self._judge(exc, posting=False)
            # Deleting twice is harmless (gone is gone), so no `ending` first: only what is done is noted.
            self.context.marks.sent(key, DELETED.format(id=tweet_id))
        return Outcome.success(f"deleted {len(posts)} post(s): {', '.join(i for _, i in posts)}")

    async def aclose(self) -> None:
        self._redactor.remove()
        if self._client is not None:
            self._client.session.close()
            self._client = None

    # threads ---------------------------------------------------------------------------------------------------

    def thread_root(self, action: Action) -> str | None:
        """The situation's first post that is still up, which every later post replies to."""
        for row in action.earlier:
            if row.phase == "undo" or row.state not in ("done", "uncertain"):
                continue
            found = self._post_of(row.key, row.detail)
            if found is not None and not self._is_deleted(row.key, found):
                return found
        return None

    def posts_of_step(self, action: Action) -> list[tuple[str, str]]:
        """Every post made for the step being switched off (its first run and its refreshes) as (key of the row
        that posted it, post id), newest first so no reply is left hanging under a deleted post."""
        posts: list[tuple[str, str]] = []
        for row in action.earlier:
            if row.phase in ("undo", "close") or row.state == "undone":
                continue
            if row.key == action.target_key or row.step_id == action.step_id:
                found = self._post_of(row.key, row.detail)
                if found is not None and found not in {i for _, i in posts}:
                    posts.append((row.key, found))
        if action.target_key:  # the target's post, even when its ledger row never got the id written
            mine = self._post_of(action.target_key, "")
            if mine is not None and mine not in {i for _, i in posts}:
                posts.append((action.target_key, mine))
        return posts[::-1]

    def _post_of(self, key: str, detail: str) -> str | None:
        """The id of the post an action made: from its ledger detail, else from its send mark."""
        return posted_id(detail) or posted_id(self.context.marks.detail(key, POST))

    def _is_deleted(self, key: str, tweet_id: str) -> bool:
        return self.context.marks.state(key, DELETED.format(id=tweet_id)) == "sent"

    # plumbing --------------------------------------------------------------------------------------------------

    def _connect(self) -> tweepy.Client:
        self._redactor.install(_LOGGERS)
        if self._client is None:
            import tweepy

            s = self.settings
            client = tweepy.Client(
                consumer_key=s.consumer_key.get_secret_value(),
                consumer_secret=s.consumer_secret.get_secret_value(),
                access_token=s.access_token.get_secret_value(),
                access_token_secret=s.access_token_secret.get_secret_value(),
            )
            # tweepy sets no timeout of its own; a hung connection must not hold a worker thread forever.
            client.session.request = functools.partial(client.session.request, timeout=s.timeout)
            self._client = client
        return self._client

    def _judge(self, exc: Exception, *, posting: bool) -> Outcome:
        """X's answer (or the network's) as an outcome; every text passes the credential filter."""
        import requests
        import tweepy

        if isinstance(exc, requests.Timeout):
            return Outcome.retry(f"X did not answer within {self.settings.timeout:g}s")
        if isinstance(exc, requests.RequestException):
            return Outcome.retry(f"cannot reach X ({type(exc).__name__})")
        if not isinstance(exc, tweepy.HTTPException):
            return Outcome.fail(self._redactor.hide(f"tweepy failed: {type(exc).__name__}: {exc}"))
        status = exc.response.status_code
        said = self._redactor.hide("; ".join(str(m) for m in exc.api_messages)[:300])
        answer = f"X answered {status} {exc.response.reason or ''}".rstrip() + (f": {said}" if said else "")
        if isinstance(exc, tweepy.TooManyRequests):
            after = self._rate_limit_wait(exc)
            when = f"; retrying after {(self.context.clock.now() + after):%H:%M:%S} UTC" if after else ""
            return Outcome.retry(f"{answer} (rate limit reached){when}", after)
        if isinstance(exc, tweepy.TwitterServerError):
            return Outcome.retry(answer)
        if isinstance(exc, tweepy.Unauthorized):
            return Outcome.fail(f"{answer} — X refused the credentials: check the x sink's consumer key and secret "
                                "and its access token and secret (values not shown)")
        if isinstance(exc, tweepy.Forbidden) and posting and any("duplicate" in str(m).lower()
                                                                 for m in exc.api_messages):
            return Outcome.success("already posted: X refused the same text again as a duplicate (403), so an "
                                   "earlier attempt went out; post id unknown")
        if isinstance(exc, tweepy.Forbidden):
            return Outcome.fail(f"{answer} — check that the X app has read and write permission and that the "
                                "access token was created after that")
        if status in (408, 425):
            return Outcome.retry(answer)
        return Outcome.fail(answer)

    def _rate_limit_wait(self, exc: Any) -> timedelta | None:
        """How long until X lifts the limit that was hit, from its reset headers (Unix times)."""
        headers = exc.response.headers
        resets: list[int] = []
        if exc.reset_time is not None:
            resets.append(int(exc.reset_time))
        if headers.get("x-user-limit-24hour-remaining") == "0" and headers.get("x-user-limit-24hour-reset"):
            with contextlib.suppress(ValueError):
                resets.append(int(headers["x-user-limit-24hour-reset"]))
        if not resets:
            return None
        wait = datetime.fromtimestamp(max(resets), UTC) - self.context.clock.now()
        return min(max(wait, timedelta(seconds=1)), _MAX_WAIT)
