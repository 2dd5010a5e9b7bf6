"""Values quoted in error messages stay short: a setting, a data row or a file's key can be megabytes long
(or a secret), and an error line is read in terminals, CI logs and a Prefect flow run's state.

    raise ConfigError(f"{key}: expected int, got {quoted(value)}")
"""

from __future__ import annotations

QUOTE_LIMIT = 200  # characters of a value that a message shows


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """repr(value), cut to `limit` characters with how long it was; never renders more than it shows
    (a long list or dict is summarised by its length before repr would walk it)."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value) if not isinstance(value, (list, tuple, dict, set)) else _short_repr(value, limit)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shortened(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A plain text (a key, a path, a problem) cut to `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _short_repr(value: list | tuple | dict | set, limit: int) -> str:
    """repr of a container built item by item, stopping once it is longer than `limit` (a container whose
    items share nested containers can have an astronomically long repr)."""
    items = value.items() if isinstance(value, dict) else value
    opening, closing = {"list": "[]", "tuple": "()", "dict": "{}", "set": "{}"}[type(value).__name__]
    parts: list[str] = []
    length = 0
    for item in items:
        if isinstance(value, dict):
            key, inner = item
            part = f"{quoted(key, limit)}: {quoted(inner, limit)}"
        else:
            part = quoted(item, limit)
        parts.append(part)
        length += len(part) + 2
        if length > limit:
            return opening[0] + ", ".join(parts) + ", ..." + closing
    return opening[0] + ", ".join(parts) + closing
