"""The daemon: probes channels on schedule, opens and closes outages through the engine, and runs every
planned step at its due time from the ledger."""

# Staff messages the daemon sends about an open situation (rendered by `validate` too).
HEALTHY_TEMPLATE = "daemon/staff-channel-healthy"
FLAPPING_TEMPLATE = "daemon/staff-flapping"
# The engine's own staff message, about a step whose outcome nobody knows; rendered by `validate` with these.
from continuity.engine import UNSURE_TEMPLATE  # noqa: E402

DAEMON_TEMPLATES = (HEALTHY_TEMPLATE, FLAPPING_TEMPLATE, UNSURE_TEMPLATE)
