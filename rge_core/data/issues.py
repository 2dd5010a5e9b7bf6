"""How MMEB readers report bad data: `DataError` to stop, `Issue` to list every problem with its location."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Input data is unusable; the message names dataset, file, row and field where they apply."""


@dataclass(frozen=True)
class Issue:
    """One problem in an input folder. `row` is the row inside `file` (None for file-level problems);
    `item_id` is the id the row would get (pair_id / item_id), "" for file-level problems."""

    subset: str
    file: str
    row: int | None
    field: str
    message: str
    item_id: str = ""

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}: row {self.row}"
        field = f": field {self.field!r}" if self.field else ""
        return f"{self.subset}: {where}{field}: {self.message}"


def raise_first(issues: list[Issue]) -> None:
    """Raise a DataError for the first issue, saying how many more there are."""
    if not issues:
        return
    more = f" (and {len(issues) - 1} more problems; `rge data check` lists them)" if len(issues) > 1 else ""
    raise DataError(f"{issues[0]}{more}")
