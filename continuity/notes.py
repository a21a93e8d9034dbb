"""The staff notes about an open situation that no playbook lists: the daemon's (a channel healthy again, a
channel flapping) and the engine's (a step nobody knows the outcome of). `validate` renders them with the
playbooks' templates; the daemon compiles them ahead."""

HEALTHY_TEMPLATE = "daemon/staff-channel-healthy"
FLAPPING_TEMPLATE = "daemon/staff-flapping"
UNSURE_TEMPLATE = "daemon/staff-step-uncertain"
DAEMON_TEMPLATES = (HEALTHY_TEMPLATE, FLAPPING_TEMPLATE, UNSURE_TEMPLATE)
