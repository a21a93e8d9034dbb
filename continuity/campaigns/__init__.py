"""Registered campaigns: marketing registers a promotion ahead, staff are briefed in time, and at launch a
surge mode switches on by itself (and off at the end).

    model.py    the campaign file (pydantic, strict)
    load.py     reading and checking a file: every error names file, line and field
    store.py    runs and versioned snapshots (migration 4)
    phases.py   register, update, cancel, brief; `advance` moves runs along the clock
    content.py  the `campaign` template variable, FAQ and answers, FAQ search, version diffs
    agents.py   what agents use during the campaign: `continuity faq` and `continuity reply`
"""

from continuity.campaigns.content import situation_campaign  # noqa: E402
from continuity.variables import register_context_part  # noqa: E402

# Templates see `campaign` (None outside a surge situation); render itself never imports campaigns.
register_context_part("campaign", situation_campaign)
