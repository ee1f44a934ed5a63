"""Count what opgraph does with corrupted copies of every file it reads; write docs/reliability.md.

Runs the engine of the robustness test suite (``tests/robustness/corruption.py``) with more examples per
format than CI does, counts the outcomes (same / valid-other / refused / silent-wrong / crash) and writes the
table, the command and the date to ``docs/reliability.md`` (and the raw counts to
``docs/benchmarks/reliability.json``).

Usage::

    PYTHONPATH=src python benchmarks/robustness/corrupt.py --examples 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))
from corruption import FORMATS, OUTCOMES, classify, json_mutations, mutations  # noqa: E402

from opgraph._base.jsonio import write_json  # noqa: E402


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _runner(fmt: Any, prepared: Any, strategy: Any, examples: int, counts: Counter[str], crashes: list[str]) -> Any:
    """A hypothesis test function that classifies ``examples`` mutations and counts them (never fails)."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutation=strategy)
    def one(mutation: tuple[str, Any]) -> None:
        label, mutate = mutation
        outcome, detail = classify(fmt, prepared, mutate)
        counts[outcome] += 1
        if outcome in ("crash", "silent-wrong") and len(crashes) < 5:
            crashes.append(f"{label}: {detail}")

    return one


def run(examples: int) -> dict[str, dict[str, object]]:
    """Counts per format and mutation family: ``{name: {"bytes": Counter, "json": Counter, "crashes": [...]}}``."""
    results: dict[str, dict[str, object]] = {}
    for name, fmt in FORMATS.items():
        entry: dict[str, object] = {}
        with tempfile.TemporaryDirectory() as tmp:
            families = [("bytes", fmt.needs)]
            if name.endswith(".json"):
                families.append(("json", fmt.shape_needs))
            prepared = None
            for family, needs in families:
                if fmt.missing(needs):
                    entry[family] = f"skipped: {needs} not present"
                    continue
                prepared = prepared or fmt.make(Path(tmp))
                counts: Counter[str] = Counter()
                crashes: list[str] = []
                if family == "bytes":
                    strategy = mutations(prepared.target.stat().st_size)
                else:
                    strategy = json_mutations(json.loads(prepared.target.read_text()))

                one = _runner(fmt, prepared, strategy, examples, counts, crashes)
                t0 = time.perf_counter()
                one()
                entry[family] = {k: counts.get(k, 0) for k in OUTCOMES}
                entry[f"{family}_problems"] = crashes
                entry[f"{family}_s"] = round(time.perf_counter() - t0, 1)
                print(name, family, entry[family], flush=True)
        results[name] = entry
    return results


def write_doc(results: dict[str, dict[str, object]], examples: int, command: str, tree: str = "") -> Path:
    """Write docs/reliability.md (and docs/benchmarks/reliability.json) from ``results``."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    total: Counter[str] = Counter()
    rows = []
    for name, entry in results.items():
        for family in ("bytes", "json"):
            counts = entry.get(family)
            if counts is None:
                continue
            if isinstance(counts, str):
                rows.append(f"| {name} | {family} | {counts} | | | | | |")
                continue
            total.update(counts)  # type: ignore[arg-type]
            tried = sum(counts.values())  # type: ignore[union-attr]
            cells = " | ".join(str(counts[k]) for k in OUTCOMES)  # type: ignore[index]
            rows.append(f"| {name} | {family} | {tried} | {cells} |")
    tried_all = sum(total.values())
    problems = [
        f"- {name} ({family}): {p}"
        for name, entry in results.items()
        for family in ("bytes", "json")
        for p in entry.get(f"{family}_problems", []) or []  # type: ignore[union-attr]
    ]
    doc = f"""# Reliability: corrupted inputs

Every file opgraph reads was corrupted at random and loaded back. The rule (issue 16, "Trust"): each outcome is
either a correct load of a valid file or one `OpgraphError` (one line and exit status 2 from the CLI); never
another exception, never a silent wrong load.

- Command: `{command}`
- Date: {now}; machine: {_cpu()}, Python {platform.python_version()}{"; source: " + tree if tree else ""}
- Examples per format and mutation family: {examples} (hypothesis, derandomized); CI runs the same engine with
  fewer (`tests/robustness/test_corruption.py`, about 10 s).

Mutations (`tests/robustness/corruption.py`): *bytes*: truncate at a random offset, XOR 1-3 random bytes,
insert 1-16 random bytes, zero up to 64 bytes, replace the whole file by 0-256 random bytes, append 1-64 bytes;
*json*: replace one value at a random path of the document by a random JSON value (a file of the wrong shape).

Outcomes: **same**: loaded, identical to the original (the mutation hit bytes that do not matter, e.g. a zip
timestamp); **valid-other**: loaded with other content, allowed only for formats without a checksum, where the
mutated bytes are themselves a valid file (another pixel value of an idx file, another title in report.json);
**refused**: one `OpgraphError`; **silent-wrong**: a checksummed file loaded with other content; **crash**: any
other exception.

| file | mutation | tried | same | valid-other | refused | silent-wrong | crash |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
| **all** | | **{tried_all}** | {" | ".join(f"**{total.get(k, 0)}**" for k in OUTCOMES)} |

{"Problems found:" + chr(10) + chr(10).join(problems) if problems else "No crash and no silent wrong load."}

What the loaders check so that this holds: npz members are read in full once so that zip's CRC-32 is
verified (also by `LazyConfigFeat` before it serves rows by seeking), object arrays are refused
(`allow_pickle=False`), shapes, dtypes, finiteness and value ranges are validated at load (TpuGraphs schema:
positive runtimes, finite features, at least one node and one configuration; images: finite, labels integer
class indices below 10,000, one per image), idx headers must match the data length, report.json is checked
for the structure of a report before use, and checkpoints load with `weights_only=True` through the base layer
after every zip member's CRC-32 is verified (`opgraph/_base/zipcheck.py`: `torch.load` does not check it, and
before that check a flipped tensor byte loaded an ffa run with other weights).

Found by this suite and fixed (before the fixes these rows had failures): `LazyConfigFeat` served rows of a
damaged member because seeking skips zip's CRC check (6 silent wrong loads in 200 with the check disabled);
torch checkpoints have no CRC check either (a flipped tensor byte loaded an ffa run with other weights, a
flipped byte in a perf checkpoint's config gave a `TypeError`); an energy `graph.json` whose `wall_s` is a list
gave a `TypeError` (3 in 200 JSON-shape mutations); a `report.json` that is a list or whose sections, figures or
tables have the wrong type gave `AttributeError`/`KeyError`/`TypeError`.

Reading the table: *valid-other* is large for the JSON files because they carry no checksum: a value changed
to another value of the right type (a title, a node's recorded time) is a valid file with other content, and
the loaders cannot tell it from the original. An energy run's `values.pt` is bound to its `graph.json` by a
SHA-256 stored in the latter; `graph.json` itself is not protected (a checksum of the document would close
that gap for edits that are not deliberate).
"""
    out = ROOT / "docs" / "reliability.md"
    out.write_text(doc)
    raw = ROOT / "docs" / "benchmarks" / "reliability.json"
    write_json(raw, {"date": now, "command": command, "examples": examples, "results": results})
    return out


def main() -> None:
    """Parse arguments, run, write the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per format and mutation family")
    parser.add_argument("--tree", default="", help="which source tree was measured (written into the doc)")
    args = parser.parse_args()
    results = run(args.examples)
    command = f"PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/robustness/corrupt.py --examples {args.examples}"
    print(f"wrote {write_doc(results, args.examples, command, args.tree)}")


if __name__ == "__main__":
    main()
