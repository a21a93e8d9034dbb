"""autoreply status: each mailbox's responder, what it answered and skipped, and why."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import console, engine, esc, guarded, print_json

auto = typer.Typer(help="The e-mail auto-responder: customers who write in during an outage get a prepared answer "
                        "in their language (run by `continuity daemon`).", no_args_is_help=True)
app.add_typer(auto, name="autoreply")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def mailbox_status(eng: Any) -> list[dict[str, Any]]:
    """One entry per `autoreply` sink of the config (and per mailbox the store remembers besides)."""
    from continuity.autoreply.state import active_parts, known_mailboxes, mailbox_summary
    from continuity.sinks.autoreply import AutoreplySettings

    configured = {name: inst.settings for name, inst in eng.loaded.sinks.items()
                  if isinstance(inst.settings, AutoreplySettings)}
    out = []
    for name in [*configured, *(m for m in known_mailboxes(eng.store) if m not in configured)]:
        settings = configured.get(name)
        parts = active_parts(eng.store, name)
        summary = mailbox_summary(eng.store, name)
        counts = summary["counts"]
        out.append({
            "name": name,
            "address": settings.address if settings else None,
            "configured": settings is not None,
            "on": bool(parts),
            "situations": [{"id": p.situation.id, "kind": p.situation.kind, "channel": p.situation.channel,
                            "reason": p.situation.reason, "opened_at": p.situation.opened_at.isoformat(),
                            "template": p.template} for p in parts],
            "counts": {state: counts.get(state, 0)
                       for state in ("sent", "skipped", "queued", "sending", "failed", "uncertain")},
            "skipped_reasons": summary["skipped_reasons"],
            "last_uid": summary["last_uid"],
            "last_ok_at": _iso(summary["last_ok_at"]),
            "last_error": summary["last_error"],
            "last_error_at": _iso(summary["last_error_at"]),
            "last_send_error": summary["last_send_error"],
        })
    return out


@auto.command("status")
@guarded
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Show each mailbox's responder: on or off and for which situations, how many messages were answered or
    skipped (and why), and the last error.

    A responder is on while an open situation has a done `autoreply` step to its mailbox; `continuity daemon`
    does the answering. `uncertain` counts answers that were being sent when the responder was stopped hard:
    they may have gone out and are never sent a second time.
    """
    eng = engine()
    boxes = mailbox_status(eng)
    if as_json:
        print_json({"mailboxes": boxes})
        return
    out = console()
    if not boxes:
        out.print("No mailbox is configured for automatic answers (add a sink of type autoreply and route "
                  "`autoreply` to it).")
        return
    from rich.table import Table

    table = Table(title="Auto-responder", title_justify="left")
    for col in ("mailbox", "state", "answered", "skipped", "waiting", "uncertain", "failed", "last error"):
        table.add_column(col)
    for b in boxes:
        c = b["counts"]
        state = ("[green]on[/] for " + esc(", ".join(f"#{s['id']} {s['kind']} {s['channel']}"
                                                     for s in b["situations"]))
                 if b["on"] else "off")
        skipped = str(c["skipped"])
        if b["skipped_reasons"]:
            skipped += " (" + ", ".join(f"{r} {n}" for r, n in b["skipped_reasons"].items()) + ")"
        error = b["last_error"] or b["last_send_error"] or ""
        if b["last_error"] and b["last_error_at"]:
            error += f" at {b['last_error_at']}"
            if b["last_ok_at"] and b["last_ok_at"] > b["last_error_at"]:  # ISO times in UTC compare as text
                error += f" (connected again at {b['last_ok_at']})"
        table.add_row(esc(f"{b['name']}\n{b['address'] or '(not configured)'}"), state, str(c["sent"]),
                      esc(skipped), str(c["queued"] + c["sending"]), str(c["uncertain"]), str(c["failed"]),
                      esc(error))
    out.print(table)
