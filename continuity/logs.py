"""One line per event, as text for people or JSON for log pipelines. Secrets never reach here: messages
are built from ledger facts and probe reasons, which carry no secret values."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER = "continuity"
# Libraries the daemon runs on: their warnings and errors go out in the same format, one line each (a
# traceback becomes the `error` field of one JSON line), never as raw text in the middle of a JSON stream.
LIBRARY_LOGGERS = ("apscheduler", "asyncio", "aiohttp")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(fields)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = getattr(record, "fields", None) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{ts} {record.levelname.lower():<7} {getattr(record, 'event', record.name):<16} {record.getMessage()}"
        return f"{line} {extra}".rstrip()


def setup(fmt: str = "text", level: int = logging.INFO) -> logging.Logger:
    logger = logging.getLogger(LOGGER)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(max(level, logging.WARNING))
        library.propagate = False
    return logger


def event(logger: logging.Logger, name: str, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, msg, extra={"event": name, "fields": fields})
