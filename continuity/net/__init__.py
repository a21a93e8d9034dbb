"""The network clients every layer above shares: SMTP in phases, and what a network failure means."""
