"""Sink registry: adding a sink type is one module plus one line here.

Sink modules are imported lazily so the CLI does not pay for httpx, aiosmtplib or apprise at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from continuity.sinks.base import Sink

SINKS: dict[str, str] = {
    "outbox": "continuity.sinks.outbox:OutboxSink",
    "file_banner": "continuity.sinks.file_banner:FileBannerSink",
    "webhook": "continuity.sinks.webhook:WebhookSink",
    "email": "continuity.sinks.email:EmailSink",
    "chat": "continuity.sinks.chat:ChatSink",
    "voice_text": "continuity.sinks.voice_text:VoiceTextSink",
    "x": "continuity.sinks.x:XSink",
    "http_post": "continuity.sinks.http_post:HttpPostSink",
    "autoreply": "continuity.sinks.autoreply:AutoreplySink",
}


def sink_class(type_name: str) -> type[Sink]:
    """The class for a sink type; KeyError for an unknown one."""
    module, _, attr = SINKS[type_name].partition(":")
    cls: type[Sink] = getattr(importlib.import_module(module), attr)
    return cls
