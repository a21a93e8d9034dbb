"""FileBannerSink: the files a website includes, merged per situation, written atomically."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.sinks.base import Action, Outcome, Rendered, SinkContext
from continuity.sinks.file_banner import FileBannerSink


def make_sink(context: SinkContext, **settings: Any) -> FileBannerSink:
    cfg = FileBannerSink.Settings.model_validate({"directory": "site/banner", **settings})
    return FileBannerSink("website", cfg, context)


def run(sink: FileBannerSink, action: Action) -> Outcome:
    async def go() -> Outcome:
        try:
            return await (sink.apply(action) if action.operation == "apply" else sink.undo(action))
        finally:
            await sink.aclose()

    return asyncio.run(go())


def read_json(context: SinkContext, name: str = "continuity-banner") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((context.base_dir / "site/banner" / f"{name}.json").read_text())
    return doc


def test_class_describes_itself() -> None:
    assert FileBannerSink.type_name == "file_banner"
    assert FileBannerSink.actions == frozenset({"banner", "notice"})
    assert FileBannerSink.idempotent and FileBannerSink.reversible


def test_apply_writes_json_and_html(context: SinkContext, make_action: Any) -> None:
    outcome = run(make_sink(context), make_action())

    assert outcome.ok, outcome.detail
    doc = read_json(context)
    assert doc["active"] is True
    assert doc["updated_at"] == "2026-11-23T10:00:00+00:00"
    entry = doc["banners"]["7"]
    assert entry["situation_id"] == 7
    assert entry["kind"] == "banner"
    assert entry["channel"] == "phone"
    assert entry["default_locale"] == "en"
    assert entry["locales"]["en"] == {
        "title": "Our phone line is down",
        "body": "Please use chat or email.\n\nWe are on it.",
    }
    assert entry["locales"]["de"]["title"] == "Unsere Telefonleitung ist gestört"

    html = (context.base_dir / "site/banner/continuity-banner.html").read_text()
    assert '<div class="continuity-banner" role="status" lang="en" data-situation="7">' in html
    assert '<div class="continuity-banner" role="status" lang="de" data-situation="7" hidden>' in html
    assert html.index('lang="en"') < html.index('lang="de"')
    assert "<strong>Our phone line is down</strong>" in html
    # Blank lines in the body become paragraphs.
    assert html.count('class="continuity-banner-body"') == 3


def test_text_is_escaped_never_markup(context: SinkContext, make_action: Any) -> None:
    nasty = Rendered("en", {"title": '<script>alert("x")</script>', "body": "Fish & <b>chips</b>\nline 2"})
    assert run(make_sink(context), make_action(messages=[nasty])).ok

    html = (context.base_dir / "site/banner/continuity-banner.html").read_text()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "Fish &amp; &lt;b&gt;chips&lt;/b&gt;<br>\nline 2" in html


FAQ = "https://shop.example.test/winter/faq"
# Body text -> the body paragraph as written to the HTML file: only http(s) URLs become links, everything
# (the href included) is escaped, and the sentence's punctuation stays outside the link.
LINKS = [
    pytest.param(f"A legtöbb kérdésre itt megtalálja a választ: {FAQ}",
                 f'A legtöbb kérdésre itt megtalálja a választ: <a href="{FAQ}">{FAQ}</a>', id="link-wrapped"),
    pytest.param(f"See {FAQ}.", f'See <a href="{FAQ}">{FAQ}</a>.', id="trailing-period-outside"),
    pytest.param(f"Questions? {FAQ}, {FAQ}; or ({FAQ})!",
                 f'Questions? <a href="{FAQ}">{FAQ}</a>, <a href="{FAQ}">{FAQ}</a>; or (<a href="{FAQ}">{FAQ}</a>)!',
                 id="punctuation-and-brackets-outside"),
    pytest.param("https://wiki.example/Coat_(clothing)",
                 '<a href="https://wiki.example/Coat_(clothing)">https://wiki.example/Coat_(clothing)</a>',
                 id="balanced-bracket-kept"),
    pytest.param("javascript:alert(1)", "javascript:alert(1)", id="javascript-not-linked"),
    pytest.param("<img src=x onerror=alert(1)> javascript:alert(1) https://ok.example/x",
                 '&lt;img src=x onerror=alert(1)&gt; javascript:alert(1) <a href="https://ok.example/x">'
                 "https://ok.example/x</a>", id="hostile-text-one-link"),
    pytest.param('https://x.example/a"onmouseover="alert(1)',
                 '<a href="https://x.example/a&quot;onmouseover=&quot;alert(1)">'
                 "https://x.example/a&quot;onmouseover=&quot;alert(1)</a>", id="quotes-in-url-escaped"),
    pytest.param("https://x.example/?a=1&b='2'<script>",
                 '<a href="https://x.example/?a=1&amp;b=&#x27;2">https://x.example/?a=1&amp;b=&#x27;2</a>'
                 "&#x27;&lt;script&gt;", id="ampersand-escaped-markup-ends-url"),
    pytest.param("ftp://files.example/x data:text/html,hi https:// https://.",
                 "ftp://files.example/x data:text/html,hi https:// https://.", id="no-host-or-other-scheme"),
    pytest.param(f"line one\n{FAQ}", f'line one<br>\n<a href="{FAQ}">{FAQ}</a>', id="line-break-kept"),
]


@pytest.mark.parametrize(("body", "expected"), LINKS)
def test_urls_in_the_body_become_links(context: SinkContext, make_action: Any, body: str, expected: str) -> None:
    message = Rendered("en", {"title": f"Winter Sale {FAQ}", "body": body})
    assert run(make_sink(context), make_action(messages=[message])).ok

    html = (context.base_dir / "site/banner/continuity-banner.html").read_text()
    assert f'  <p class="continuity-banner-body">{expected}</p>\n' in html
    assert "<strong>Winter Sale https://shop.example.test/winter/faq</strong>" in html  # titles stay plain text
    assert all(href.startswith("https://") for href in re.findall(r'href="([^"]*)"', html))


def test_files_are_readable_and_no_temp_files_are_left(context: SinkContext, make_action: Any) -> None:
    assert run(make_sink(context), make_action()).ok

    directory = context.base_dir / "site/banner"
    names = sorted(p.name for p in directory.iterdir())
    assert names == [".continuity-banner.lock", "continuity-banner.html", "continuity-banner.json"]
    for name in names[1:]:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o644


def test_several_situations_merge_and_undo_one_at_a_time(context: SinkContext, make_action: Any) -> None:
    sink = make_sink(context, name="status")
    phone = make_action()
    chat = make_action(key="sit-9/banner/apply", situation_id=9, channel="chat")

    assert run(sink, phone).ok
    assert run(sink, chat).ok
    assert set(read_json(context, "status")["banners"]) == {"7", "9"}
    html_path = context.base_dir / "site/banner/status.html"
    assert 'data-situation="7"' in html_path.read_text() and 'data-situation="9"' in html_path.read_text()

    undo_phone = make_action(key="sit-7/banner/undo", operation="undo", target_key=phone.key)
    assert run(sink, undo_phone).ok
    assert set(read_json(context, "status")["banners"]) == {"9"}
    assert 'data-situation="7"' not in html_path.read_text()

    undo_chat = make_action(key="sit-9/banner/undo", operation="undo", situation_id=9, target_key=chat.key)
    assert run(sink, undo_chat).ok
    assert not html_path.exists()
    assert not (context.base_dir / "site/banner/status.json").exists()


def test_apply_twice_keeps_one_entry(context: SinkContext, make_action: Any) -> None:
    sink = make_sink(context)
    assert run(sink, make_action()).ok
    assert run(sink, make_action()).ok
    assert list(read_json(context)["banners"]) == ["7"]


def test_undo_with_nothing_shown_is_fine(context: SinkContext, make_action: Any) -> None:
    outcome = run(make_sink(context), make_action(operation="undo"))
    assert outcome.ok, outcome.detail


def test_concurrent_writers_lose_no_update(context: SinkContext, make_action: Any) -> None:
    # Every apply runs its read-merge-write in a worker thread with its own lock-file descriptor, so
    # without the lock these would overwrite each other's entries.
    sink = make_sink(context)

    async def go() -> list[Outcome]:
        actions = [make_action(key=f"k{i}", situation_id=i) for i in range(30)]
        return list(await asyncio.gather(*(sink.apply(a) for a in actions)))

    assert all(o.ok for o in asyncio.run(go()))
    assert len(read_json(context)["banners"]) == 30


def test_foreign_json_is_not_overwritten(context: SinkContext, make_action: Any) -> None:
    directory = context.base_dir / "site/banner"
    directory.mkdir(parents=True)
    (directory / "continuity-banner.json").write_text("not json {")

    outcome = run(make_sink(context), make_action())

    assert outcome.status == "error"
    assert "not a banner file" in outcome.detail
    assert (directory / "continuity-banner.json").read_text() == "not json {"


def test_unwritable_directory_is_a_permanent_failure(context: SinkContext, make_action: Any) -> None:
    (context.base_dir / "site").mkdir()
    (context.base_dir / "site/banner").write_text("a file where the directory should be")

    outcome = run(make_sink(context), make_action())

    assert outcome.status == "error"
    assert "cannot write the banner" in outcome.detail


def test_absolute_directory_is_used_as_is(context: SinkContext, make_action: Any, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    assert run(make_sink(context, directory=str(target)), make_action()).ok
    assert (target / "continuity-banner.json").exists()


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        FileBannerSink.Settings.model_validate({"directory": "x", "nmae": "typo"})
    with pytest.raises(ValidationError):
        FileBannerSink.Settings.model_validate({})
