"""continuity: keep a small support team reachable when a channel dies or a surge hits."""

__version__ = "0.1.0"
