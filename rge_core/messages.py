"""Values quoted in error messages stay short: a setting, a data row or a file's key can be megabytes long
(or a secret), and an error line is read in terminals, CI logs and a Prefect flow run's state.

    raise ConfigError(f"{key}: expected int, got {quoted(value)}")
"""

from __future__ import annotations

QUOTE_LIMIT = 200  # characters of a value that a message shows


def shortened(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A plain text (a key, a path, a problem) cut to `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """repr(value) cut to `limit` characters. A container is rendered item by item until the limit is
    passed: one whose items share nested containers (YAML aliases) can have an astronomically long repr."""
    if isinstance(value, dict):
        return shortened(
            _items("{", (f"{quoted(k, limit)}: {quoted(v, limit)}" for k, v in value.items()), "}", limit), limit
        )
    if isinstance(value, (list, tuple, set)):
        opening, closing = (
            ("[", "]") if isinstance(value, list) else ("(", ")") if isinstance(value, tuple) else ("{", "}")
        )
        return shortened(_items(opening, (quoted(item, limit) for item in value), closing, limit), limit)
    return shortened(repr(value), limit)


def _items(opening: str, parts, closing: str, limit: int) -> str:
    shown: list[str] = []
    for part in parts:
        shown.append(part)
        if sum(len(p) + 2 for p in shown) > limit:
            return opening + ", ".join(shown) + ", ..." + closing
    return opening + ", ".join(shown) + closing
