"""Interval enclosures where a value occurs more than once: piston, the Euler oscillator, compressed cells.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/enclose_bench.py
Writes the section "Enclosures with reused values" of docs/benchmarks/dcg.md (between its markers).

Cases (issue 14, parts 2 and 3):

* piston (uqtestfuns, 7 uniform inputs) at 2-6 atoms per input, with the dedicated form of ``sqrt(a**2 + b) - a``
  (``opgraph.dcg.enclose``) and without it (the one-sided reciprocal alone): certified bound, true W1 against the
  cached 4 x 2**22 Sobol reference of ``uq.py``, CPU seconds (median of 3 interleaved rounds after a warm-up);
* ``1 / (sqrt(a**2 + b) - a)`` on U(1, 3) x U(0.2, 1), bounds with and without the form as atoms double;
* ``1 / (x*x - x + 0.3)`` on U(0, 1), bounds and CPU with and without cell subdivision;
* the damped oscillator of ``uq.py`` (semi-implicit Euler, 100 steps, 8 atoms) integrated to t = 2.5, 5, 10:
  bound over true W1 (reference: 2 x 2**16 scrambled Sobol points), the wrapping effect;
* a closed-form oscillator ``x0 * (exp(-z w t) cos(w sqrt(1 - z^2) t))`` at 32-256 atoms, where 128 and 256 atoms
  compress the (w, z) factor: the bound as atoms double.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph.dcg import enclose
from opgraph.measure import interleaved_rounds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
START, END = "<!-- enclose:start -->", "<!-- enclose:end -->"
ROUNDS = 3


def _quiet(fn: Any, *inputs: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *inputs, **kw)


class _FormsOff:
    """Context: the dedicated forms of :mod:`opgraph.dcg.enclose` switched off (the engine finds none)."""

    def __enter__(self) -> None:
        self._orig = enclose.find_forms
        enclose.find_forms = lambda graph: {}

    def __exit__(self, *exc: Any) -> None:
        enclose.find_forms = self._orig


class _NoSubdivision:
    """Context: cell subdivision switched off (no bisection levels for any box)."""

    def __enter__(self) -> None:
        self._orig = enclose.levels_for
        enclose.levels_for = lambda k, max_pieces=0: 0

    def __exit__(self, *exc: Any) -> None:
        enclose.levels_for = self._orig


def _cpu_median(fn: Any) -> float:
    t = interleaved_rounds([fn], rounds=ROUNDS, warmup=1, timer="cpu")
    return statistics.median(t[0]) / 1e9


def piston_rows(uq: Any) -> list[str]:
    case = next(c for c in uq.make_cases() if c.id == "Piston")
    ref = uq.load_reference(case)
    rows = []
    for n in (2, 3, 4, 5, 6):
        r = _quiet(case.fn, *case.dcg_inputs(), atoms=n)
        with _FormsOff():
            off = _quiet(case.fn, *case.dcg_inputs(), atoms=n)
            t_off = _cpu_median(lambda n=n: _quiet(case.fn, *case.dcg_inputs(), atoms=n))
        t_on = _cpu_median(lambda n=n: _quiet(case.fn, *case.dcg_inputs(), atoms=n))
        w1 = ref.w1(r.atoms, r.weights)
        rows.append(
            f"| {n} | {n**7} | {r.w1_bound:.3g} | {r.w1_bound / ref.std:.3g} | {w1:.3g} | {r.w1_bound / w1:.3g} | "
            f"{off.w1_bound:.3g} | {t_on:.3g} | {t_off:.3g} |"
        )
        print(rows[-1], flush=True)
    return rows


def cancellation_rows() -> list[str]:
    def fn(a: Any, b: Any) -> Any:
        return 1.0 / (np.sqrt(a**2 + b) - a)

    inputs = [od.Uniform(1, 3), od.Uniform(0.2, 1)]
    fine = _quiet(fn, *inputs, atoms=1024)
    rows = []
    for n in (8, 16, 32, 64):
        r = _quiet(fn, *inputs, atoms=n)
        with _FormsOff():
            off = _quiet(fn, *inputs, atoms=n)
        rows.append(f"| {n} | {r.w1_bound:.3g} | {off.w1_bound:.3g} | {r.w1(fine):.3g} +- {fine.w1_bound:.1g} |")
        print(rows[-1], flush=True)
    return rows


def subdivision_rows() -> list[str]:
    def fn(x: Any) -> Any:
        return 1.0 / (x * x - x + 0.3)

    x = od.Uniform(0, 1)
    fine = _quiet(fn, x, atoms=4096)
    rows = []
    for n in (2, 3, 4, 6, 8, 16, 32):
        r = _quiet(fn, x, atoms=n)
        t_on = _cpu_median(lambda n=n: _quiet(fn, x, atoms=n))
        with _NoSubdivision():
            off = _quiet(fn, x, atoms=n)
            t_off = _cpu_median(lambda n=n: _quiet(fn, x, atoms=n))
        rows.append(
            f"| {n} | {r.w1_bound:.3g} | {off.w1_bound:.3g} | {r.w1(fine):.3g} +- {fine.w1_bound:.1g} | "
            f"{t_on * 1e3:.3g} | {t_off * 1e3:.3g} |"
        )
        print(rows[-1], flush=True)
    return rows


def oscillator_rows(uq: Any) -> list[str]:
    rows = []
    for t_end in (2.5, 5.0, 10.0):
        case = uq.ode_oscillator(100, t_end)
        ref = uq.compute_reference(case, log2_points=16, scrambles=2, atoms=2**12)
        r = _quiet(case.fn, *case.dcg_inputs(), atoms=8)
        w1 = ref.w1(r.atoms, r.weights)
        rows.append(
            f"| {t_end:g} | {r.w1_bound:.3g} | {r.w1_bound / ref.std:.3g} | {w1:.3g} | {r.w1_bound / w1:.3g} | "
            f"{math.exp(t_end):.3g} |"
        )
        print(rows[-1], flush=True)
    return rows


def compressed_rows() -> list[str]:
    def fn(w: Any, z: Any, x0: Any) -> Any:
        return x0 * (np.exp(-z * w * 10.0) * np.cos(w * np.sqrt(1 - z * z) * 10.0))

    inputs = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]
    fine = _quiet(fn, *inputs, atoms=512)
    rows = []
    for n in (32, 64, 128, 256):
        r = _quiet(fn, *inputs, atoms=n)
        comp = r.info.get("compressions") or []
        how = f"{comp[0]['joint_atoms']} -> {comp[0]['atoms']}" if comp else "none"
        rows.append(
            f"| {n} | {how} | {r.w1_bound:.3g} | {r.info.get('bound_method')} | "
            f"{r.info.get('cellwise_bound', math.nan):.3g} | {r.w1(fine):.3g} +- {fine.w1_bound:.1g} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    sys.path.insert(0, str(HERE))
    import uq  # noqa: PLC0415 - the benchmark module next to this one (cases and cached references)

    piston = piston_rows(uq)
    canc = cancellation_rows()
    subd = subdivision_rows()
    osc = oscillator_rows(uq)
    comp = compressed_rows()
    cpu = platform.processor() or platform.machine()
    lines = [
        START,
        "## Enclosures with reused values (issue 14, parts 2-3)",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/dcg/enclose_bench.py` on {cpu}, Python {sys.version.split()[0]}, "
        f"NumPy {np.__version__}, {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M')} UTC, 1 thread, shared "
        f"2-core VM; CPU seconds are the median of {ROUNDS} interleaved rounds after a warm-up (tracing included).",
        "",
        "**Piston** (uqtestfuns `Piston`, 7 uniform inputs; before this change the bound was `inf` at every atom "
        "count). *form*: with the monotonicity form of `sqrt(a**2 + b) - a` (`opgraph.dcg.enclose`); *no form*: "
        "the one-sided reciprocal alone. True W1 against the cached 4 x 2^22 Sobol reference of `uq.py` "
        "(its error 1e-5). Output std 0.1395.",
        "",
        "| atoms per input | grid cells | bound (form) | bound / std | true W1 | bound / true | bound (no form) "
        "| CPU s (form) | CPU s (no form) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *piston,
        "",
        "8 atoms per input (2^21 cells) exceed the default `max_joint` and the piston has no separator, so `atoms=8` "
        "and `target_w1` still return the QMC fallback (`uq.py`); certifying finer piston grids needs the per-input "
        "allocation and compression work of issue 14 part 3, not an enclosure.",
        "",
        "**`1 / (sqrt(a**2 + b) - a)`**, a ~ U(1, 3), b ~ U(0.2, 1): certified bound with and without the form; "
        "true W1 against a 1024-atom evaluation (+- its own bound).",
        "",
        "| atoms | bound (form) | bound (no form) | W1 to 1024 atoms |",
        "|---:|---:|---:|---:|",
        *canc,
        "",
        "**Cell subdivision**: `1 / (x*x - x + 0.3)`, x ~ U(0, 1) (the denominator is >= 0.05, but its interval "
        "enclosure on a wide cell contains 0 or comes close to it). A box whose enclosure is infinite, or whose "
        "denominator enclosure lies within 4x its width of 0, is re-evaluated on up to 64 sub-boxes (hull); "
        "*off*: without subdivision (mean-value form only). W1 against a 4096-atom evaluation (+- its bound). "
        "CPU milliseconds, median of 3.",
        "",
        "| atoms | bound | bound (off) | W1 to 4096 atoms | CPU ms | CPU ms (off) |",
        "|---:|---:|---:|---:|---:|---:|",
        *subd,
        "",
        "**Euler oscillator** (`uq.py`'s damped oscillator, semi-implicit Euler, 100 steps, 8 atoms per input) "
        "integrated to time t: the bound grows like e^(c t) with the time, not with the step count (the wrapping "
        "effect of interval boxes under a rotation, in the value and derivative enclosures); reference 2 x 2^16 "
        "scrambled Sobol points.",
        "",
        "| t | bound | bound / std | true W1 | bound / true | e^t |",
        "|---:|---:|---:|---:|---:|---:|",
        *osc,
        "",
        "**Compressed cells and doubling atoms**: `x0 * (exp(-z w t) cos(w sqrt(1 - z^2) t))`, w ~ U(0.8, 1.2), "
        "z ~ U(0.05, 0.15), x0 ~ N(1, 0.1), t = 10; from 128 atoms on, the (w, z) factor is compressed (its cells "
        "are hulls of the grouped boxes' enclosures). The bound keeps falling; the issue's 0.013 -> 0.114 "
        "(64 -> 128 atoms) was not reproduced on this engine. W1 against a 512-atom evaluation (+- its bound).",
        "",
        "| atoms | compression | bound | method | cellwise bound | W1 to 512 atoms |",
        "|---:|---|---:|---|---:|---:|",
        *comp,
        END,
    ]
    replace_marked_block(DOC, START, END, "\n".join(lines))
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
