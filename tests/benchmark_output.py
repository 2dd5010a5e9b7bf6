"""Reads a benchmark's printed output and checks it against itself: the `_timing.print_table` tables, the
seconds and backend rows, and each `ratio:` line, whose value must be what the timings printed in the same
run give (within the printed rounding, by interval arithmetic), naming exactly the comparisons the benchmark
defines (`expected_comparisons`). Used by tests/test_benchmarks_smoke.py.

    check_output("bench_synth.py", stdout)  # AssertionError on the first figure that its timings do not back
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RATIO_LINE = re.compile(r"^ratio: .+ vs .+: \d+\.\d\dx$")
RATIO = re.compile(r"^ratio: (?P<name>.+) vs (?P<baseline>.+): (?P<value>\d+\.\d\d)x$")
# _timing.print_table: a title line, this header, the baseline row, then one row per candidate.
TABLE_HEADER = re.compile(r"^  name\s+median s\s+items/s\s+ratio$")
TABLE_ROW = re.compile(
    r"^  (?P<name>.+?)\s+(?P<median>\d+\.\d{4})\s+(?P<rate>\d+\.\d) (?P<unit>\S+)/s\s+(?P<ratio>\d+\.\d\d)x$"
)
# bench_eval's cold and cached runs of the evaluate stage.
SECONDS_LINE = re.compile(r"^(?P<name>\w+)\s+(?P<seconds>\d+\.\d\d) s\s+chunks encoded: \d+$")
# bench_structured_output's table: prompt set, backend, seconds, tokens, tokens/s, matching/requests.
BACKEND_ROW = re.compile(
    r"^(?P<set>\S+)\s+(?P<backend>\w+)\s+(?P<seconds>\d+\.\d\d)\s+(?P<tokens>\d+)\s+(?P<rate>\d+)\s+\d+/\d+$"
)


def constants(script: str) -> dict:
    """The literal module-level constants of a benchmark script (QUICK, WAYS, SETS, ...), without importing it."""
    values = {}
    for node in ast.parse((BENCHMARKS / script).read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def expected_comparisons(script: str) -> list[str]:
    """The `<name> vs <baseline>` of every ratio line the benchmark defines for a --quick run."""
    const = constants(script)
    fixed = {
        "bench_synth.py": ["write_benchmark vs write_benchmark 1/4 size", "write_benchmark vs plain PIL PNG loop"],
        "bench_identity.py": [
            "content fingerprint vs stat fingerprint",
            "content fingerprint, cached in process vs stat fingerprint",
            "verified reuse vs manifest read",
        ],
        "bench_model_core.py": [
            "queries batched vs queries one at a time",
            "targets batched vs targets one at a time",
        ],
        "bench_embed.py": [
            "queries batched vs queries one at a time",
            "candidates batched vs candidates one at a time",
        ],
        "bench_train.py": [
            "rge vs baseline",
            "rge (vllm engine) vs baseline",
            "rge step time vs baseline",
            "rge (vllm engine) step time vs rge",
            "batched generation vs one query at a time",
        ],
        "bench_gpu.py": [
            "queries batched vs queries one at a time",
            "candidates batched vs candidates one at a time",
            "length-sorted mixed-length candidates vs unsorted mixed-length candidates",
            "rge vs baseline",
            "rge step time vs baseline",
        ],
    }
    if script in fixed:
        return fixed[script]
    if script == "bench_structured_output.py":
        baseline, candidate = const["BACKENDS"]
        return [f"{prompt_set} {candidate} vs {baseline}" for prompt_set in const["SETS"]]
    if script == "bench_curation.py":
        return [f"vLLM (one call) vs transformers (batch {const['QUICK']['batch_size']})"]
    if script == "bench_eval.py":
        assert {name for pair in const["COMPARED"] for name in pair} <= set(const["WAYS"])
        return [
            "cached vs cold",
            *(f"{name} vs {baseline}" for name, baseline in const["COMPARED"]),
            "sorted mixed-length candidates vs unsorted mixed-length candidates",
        ]
    raise AssertionError(
        f"{script}: a new benchmark; add the comparisons it defines to expected_comparisons (tests/benchmark_output.py)"
    )


# ------------------------------------------------------------------------------------------- printed rounding

Interval = tuple[float, float]


def printed(text: str) -> Interval:
    """The values a number printed as `text` can stand for: half a unit of its last printed digit either way."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    half = 0.5 * 10.0**-decimals
    value = float(text)
    return max(value - half, 0.0), value + half


def divide(a: Interval, b: Interval) -> Interval:
    return a[0] / b[1], (a[1] / b[0] if b[0] > 0 else math.inf)


def times(a: Interval, b: Interval) -> Interval:
    return a[0] * b[0], a[1] * b[1]


def intersect(a: Interval, b: Interval) -> Interval:
    low, high = max(a[0], b[0]), min(a[1], b[1])
    assert low <= high * (1 + 1e-12), f"inconsistent printed figures: {a} and {b}"
    return low, high


def agrees(text: str, interval: Interval) -> bool:
    """Whether a number printed as `text` can be the rounding of a value in `interval`."""
    low, high = printed(text)
    return low <= interval[1] * (1 + 1e-12) and interval[0] <= high * (1 + 1e-12)


# ------------------------------------------------------------------------------------------------ the output


@dataclass
class Row:
    name: str
    median: str
    rate: str
    unit: str
    ratio: str

    def items(self) -> int | None:
        """The item count behind the row (rate x median), when the printed figures pin down a single integer."""
        low, high = times(printed(self.rate), printed(self.median))
        candidates = range(max(1, math.ceil(low - 1e-9)), math.floor(high + 1e-9) + 1)
        assert candidates, f"{self.name}: {self.rate} {self.unit}/s x {self.median} s is no whole item count"
        return candidates[0] if len(candidates) == 1 else None


@dataclass
class Table:
    title: str
    rows: list[Row]  # the baseline first
    ends_at: int  # index of the output line after the table

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)


def tables(lines: list[str]) -> list[Table]:
    found = []
    for index, line in enumerate(lines):
        if not TABLE_HEADER.match(line):
            continue
        rows, end = [], index + 1
        while end < len(lines) and (match := TABLE_ROW.match(lines[end])):
            rows.append(Row(**match.groupdict()))
            end += 1
        assert len(rows) >= 2, f"table {lines[index - 1]!r} has no candidate row"
        baseline = rows[0]
        assert baseline.name.endswith(" (baseline)") and baseline.ratio == "1.00", lines[index : end + 1]
        baseline.name = baseline.name.removesuffix(" (baseline)")
        assert not any(r.name.endswith("(baseline)") for r in rows[1:])
        found.append(Table(lines[index - 1].strip(), rows, end))
    return found


def throughput_ratio(row: Row, baseline: Row) -> Interval:
    """What `row`'s ratio against `baseline` can be, given their printed rates and (item counts known) medians."""
    assert row.unit == baseline.unit, (row, baseline)
    interval = divide(printed(row.rate), printed(baseline.rate))
    items, base_items = row.items(), baseline.items()
    if items is not None and base_items is not None:  # (items / median) / (base items / base median)
        by_medians = divide(printed(baseline.median), printed(row.median))
        interval = intersect(interval, (by_medians[0] * items / base_items, by_medians[1] * items / base_items))
    return interval


def check_table(table: Table) -> None:
    """Each row's rate x median is a whole item count and its ratio is its throughput over the baseline's."""
    baseline = table.rows[0]
    for row in table.rows:
        row.items()
    for row in table.rows[1:]:
        expected = throughput_ratio(row, baseline)
        assert agrees(row.ratio, expected), f"{table.title}: {row.name} ratio {row.ratio}x, the figures give {expected}"


def explain(line: str, index: int, lines: list[str], printed_tables: list[Table]) -> Interval:
    """The value the timings printed before a ratio line give it; fails when no printed timing backs it."""
    match = RATIO.match(line)
    assert match, line
    name, baseline = match["name"], match["baseline"]
    before = [t for t in printed_tables if t.ends_at <= index]
    table = before[-1] if before else None
    if table and table.rows[0].name == baseline and (row := table.row(name)) is not None:
        assert row.ratio == match["value"], f"{line!r} differs from its table's ratio column {row.ratio}x"
        return throughput_ratio(row, table.rows[0])
    step = re.fullmatch(r"(?P<name>.+) step time", name)
    if step and table and (base := table.row(baseline)) is not None and (row := table.row(step["name"])) is not None:
        return divide(printed(row.median), printed(base.median))  # a time ratio, against any row: > 1 is slower
    seconds = {m["name"]: m["seconds"] for m in map(SECONDS_LINE.match, lines[:index]) if m}
    if name in seconds and baseline in seconds:  # equal work: the speed-up is baseline time / time
        return divide(printed(seconds[baseline]), printed(seconds[name]))
    backends = {(m["set"], m["backend"]): m for m in map(BACKEND_ROW.match, lines[:index]) if m}
    prompt_set, _, backend = name.rpartition(" ")
    if (prompt_set, backend) in backends and (prompt_set, baseline) in backends:
        rates = []
        for key in ((prompt_set, backend), (prompt_set, baseline)):
            row = backends[key]
            by_tokens = divide((float(row["tokens"]),) * 2, printed(row["seconds"]))
            rates.append(intersect(printed(row["rate"]), by_tokens))  # the printed rate is tokens / seconds
        return divide(rates[0], rates[1])
    raise AssertionError(f"{line!r}: no timing printed before it backs this ratio")


def check_output(script: str, stdout: str) -> None:
    lines = stdout.splitlines()
    ratio_lines = [(i, line) for i, line in enumerate(lines) if line.startswith("ratio:")]
    assert ratio_lines, stdout
    assert all(RATIO_LINE.match(line) for _, line in ratio_lines), ratio_lines
    printed_tables = tables(lines)
    for table in printed_tables:
        check_table(table)
    medians: dict[str, str] = {}  # a case printed in several tables is the same measurement
    for table in printed_tables:
        for row in table.rows:
            assert medians.setdefault(row.name, row.median) == row.median, f"{row.name}: two medians"
    for index, line in ratio_lines:
        expected = explain(line, index, lines, printed_tables)
        value = RATIO.match(line)["value"]
        assert agrees(value, expected), f"{line!r}: the printed timings give {expected}"
    named = Counter(RATIO.match(line)["name"] + " vs " + RATIO.match(line)["baseline"] for _, line in ratio_lines)
    assert named == Counter(expected_comparisons(script)), named
