"""The operator console: server-rendered pages at /console/ of the daemon, for on-call staff on a phone and
marketing registering campaigns. Thin like the CLI: every action is an engine call."""
