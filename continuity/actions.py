"""What a playbook step can do, as data: who it speaks to and whether closing the situation switches it off.

Adding an action kind (the auto-responder adds `autoreply`) is one line here plus sinks that support it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Audience = Literal["staff", "customers"]


@dataclass(frozen=True)
class ActionKind:
    name: str
    audience: Audience
    reversible: bool
    help: str


ACTIONS: dict[str, ActionKind] = {
    a.name: a
    for a in (
        ActionKind("notify", "staff", False, "a message to the team (runbook, reminder, resolved)"),
        ActionKind("post", "customers", False, "a public one-off post (social media, status update)"),
        ActionKind("notice", "customers", True, "a customer notice switched on until the situation closes"),
        ActionKind("banner", "customers", True, "a website banner switched on until the situation closes"),
        ActionKind("autoreply", "customers", True, "every customer email to a mailbox answered with the prepared "
                   "text until the situation closes"),
        ActionKind("announce", "customers", True, "a phone announcement switched on until the situation closes"),
    )
}
