"""The daemon: probes channels on schedule, opens and closes outages through the engine, and runs every
planned step at its due time from the ledger."""
