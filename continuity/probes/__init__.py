"""Probe registry: adding a probe type is one module plus one line here (imported lazily)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from continuity.probes.base import Probe

PROBES: dict[str, str] = {
    "http": "continuity.probes.http:HttpProbe",
    "tcp": "continuity.probes.tcp:TcpProbe",
    "dns": "continuity.probes.dns:DnsProbe",
    "smtp": "continuity.probes.smtp:SmtpProbe",
    "imap": "continuity.probes.imap:ImapProbe",
    "sip_options": "continuity.probes.sip_options:SipOptionsProbe",
    "statuspage": "continuity.probes.statuspage:StatuspageProbe",
    "mail_canary": "continuity.probes.mail_canary:MailCanaryProbe",
    "volume": "continuity.probes.volume:VolumeProbe",
    "heartbeat": "continuity.probes.heartbeat:HeartbeatProbe",
}


def probe_class(type_name: str) -> type[Probe]:
    """The class for a probe type; KeyError for an unknown one."""
    module, _, attr = PROBES[type_name].partition(":")
    cls: type[Probe] = getattr(importlib.import_module(module), attr)
    return cls
