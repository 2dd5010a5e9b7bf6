"""The conclusion of a synthetic item's facts, and whether a rationale reaches it.

The reasoning suites' facts end with their answer after the last "; " or ", so " ("...; fewest: blue.",
"The counts: cyan four, yellow three, so cyan."); a facts text with neither is its own conclusion. A
rationale reaches the right conclusion when its own last clause, found the same way, is the same text.
"""

from __future__ import annotations

import re

_LAST_CLAUSE = re.compile(r"; |, so ")


def conclusion(text: str) -> str:
    return _LAST_CLAUSE.split(text.strip())[-1].strip().rstrip(".")


def reaches(rationale: str, facts: str) -> bool:
    """Whether `rationale` ends with the conclusion of `facts` (an empty rationale never does)."""
    return bool(rationale.strip()) and conclusion(rationale) == conclusion(facts)
