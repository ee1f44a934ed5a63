"""Certified CDF bands of opgraph.dcg beside probability bounds analysis (``pba`` on PyPI).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/band_vs_pba.py
Writes the section "Certified CDF bands vs pba" of docs/benchmarks/dcg.md (between its markers, the rest of the
file is kept) and the figure benchmarks/dcg/results/band_vs_pba.png.

For each case and level q in {5%, 50%, 95%} it records the width of the interval each method gives for the q-quantile
and whether that interval contains the exact quantile (closed forms or deterministic quadrature, no sampling).
pba is run with its default dependence (``"f"``, Frechet: any dependence, rigorous) and with the dependence a user
would pick knowing the truth (``"i"`` independence for independent operands, ``"p"`` perfect for ``X - X``).
pba's ``"i"`` and ``"p"`` results are zero-width: its p-boxes of precise laws are 200 quantiles with no
discretization error, so they are estimates rather than bounds (the table shows where they miss the exact value).
Times are CPU seconds (process_time), median of 3 runs after a warm-up; ours includes the evaluation and the band.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import io
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats as st
from scipy import integrate, optimize

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
FIG = ROOT / "benchmarks" / "dcg" / "results" / "band_vs_pba.png"
START, END = "<!-- band-vs-pba:start -->", "<!-- band-vs-pba:end -->"
LEVELS = (0.05, 0.5, 0.95)


def _pba() -> Any:
    try:
        import pba
    except ImportError:
        sys.exit("band_vs_pba.py needs pba: pip install 'opgraph[bench]'")
    return pba


@dataclass
class Case:
    key: str
    title: str
    ours: Callable[[], Any]  # -> DistResult
    pba_default: Callable[[Any], Any]  # pba module -> Pbox (method "f")
    pba_known: Callable[[Any], Any] | None  # pba module -> Pbox (dependence picked knowing the truth)
    known_label: str
    exact_cdf: Callable[[float], float]
    exact_q: Callable[[float], float]


def _quantile_from_cdf(cdf: Callable[[float], float], lo: float, hi: float) -> Callable[[float], float]:
    def q(p: float) -> float:
        return optimize.brentq(lambda t: cdf(t) - p, lo, hi, xtol=1e-13, rtol=1e-13)

    return q


def _irwin_hall3(t: float) -> float:
    return float(sum((-1) ** k * math.comb(3, k) * max(t - k, 0.0) ** 3 for k in range(4)) / 6.0)


def _xy_cdf(t: float) -> float:  # X ~ U(1, 2), Y ~ N(2, 0.5): int_1^2 Phi((t / x - 2) / 0.5) dx
    return integrate.quad(lambda x: st.norm.cdf((t / x - 2.0) / 0.5), 1.0, 2.0, epsabs=1e-14, epsrel=1e-13)[0]


def _ratio_cdf(t: float) -> float:  # X, Y ~ U(1, 2): P(X / (X + Y) <= t) = P(Y >= X (1 - t) / t)
    if t <= 1 / 3:
        return 0.0
    if t >= 2 / 3:
        return 1.0
    return integrate.quad(
        lambda x: 1.0 - min(max(x * (1 - t) / t - 1.0, 0.0), 1.0), 1.0, 2.0, epsabs=1e-14, epsrel=1e-13, limit=200
    )[0]


def make_cases() -> list[Case]:
    return [
        Case(
            "X - X",
            "X - X, X ~ N(1, 0.1) (same X)",
            lambda: od.evaluate(lambda x: x - x, od.Normal(1, 0.1)),
            lambda p: (lambda x: x.sub(x, method="f"))(p.norm(1, 0.1)),
            lambda p: (lambda x: x.sub(x, method="p"))(p.norm(1, 0.1)),
            "p",
            lambda t: float(t >= 0),
            lambda q: 0.0,
        ),
        Case(
            "X * Y",
            "X * Y, X ~ U(1, 2), Y ~ N(2, 0.5)",
            lambda: od.evaluate(lambda x, y: x * y, od.Uniform(1, 2), od.Normal(2, 0.5)),
            lambda p: p.uniform(1, 2).mul(p.norm(2, 0.5), method="f"),
            lambda p: p.uniform(1, 2).mul(p.norm(2, 0.5), method="i"),
            "i",
            _xy_cdf,
            _quantile_from_cdf(_xy_cdf, -10, 20),
        ),
        Case(
            "U1 + U2 + U3",
            "U1 + U2 + U3, U ~ U(0, 1) (Irwin-Hall 3)",
            lambda: od.evaluate(lambda a, b, c: a + b + c, *[od.Uniform(0, 1)] * 3, atoms=96),
            lambda p: p.uniform(0, 1).add(p.uniform(0, 1), method="f").add(p.uniform(0, 1), method="f"),
            lambda p: p.uniform(0, 1).add(p.uniform(0, 1), method="i").add(p.uniform(0, 1), method="i"),
            "i",
            _irwin_hall3,
            _quantile_from_cdf(_irwin_hall3, 0.0, 3.0),
        ),
        Case(
            "X / (X + Y)",
            "X / (X + Y), X, Y ~ U(1, 2) (X used twice)",
            lambda: od.evaluate(lambda x, y: x / (x + y), od.Uniform(1, 2), od.Uniform(1, 2)),
            lambda p: (lambda x, y: x.div(x.add(y, method="f"), method="f"))(p.uniform(1, 2), p.uniform(1, 2)),
            None,  # no dependence choice of pba is valid here: X occurs in both operands of the division
            "",
            _ratio_cdf,
            _quantile_from_cdf(_ratio_cdf, 1 / 3, 2 / 3),
        ),
    ]


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with pba's prints (moment checks of its constructors) sent to nowhere."""

    def run() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()

    return run


def _machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pba_interval(pb: Any, q: float) -> tuple[float, float]:
    iv = pb.get_interval(q)
    return float(iv.left), float(iv.right)


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(3):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return out, statistics.median(times)


def run() -> list[dict[str, Any]]:
    pba = _pba()
    rows = []
    for case in make_cases():

        def ours(case: Case = case) -> Any:
            r = case.ours()
            r.cdf_band()
            return r

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r, t_ours = _cpu(ours)
            pf, t_pf = _cpu(_quiet(lambda case=case: case.pba_default(pba)))
            pk, t_pk = _cpu(_quiet(lambda case=case: case.pba_known(pba))) if case.pba_known else (None, math.nan)
        row: dict[str, Any] = {
            "case": case,
            "result": r,
            "pba_f": pf,
            "pba_k": pk,
            "cpu_s": {"ours": t_ours, "pba_f": t_pf, "pba_k": t_pk},
            "levels": {},
        }
        for q in LEVELS:
            x = case.exact_q(q)
            lo, hi = r.quantile_bounds(q)
            fl, fh = _pba_interval(pf, q)
            entry = {"exact": x, "ours": (lo, hi), "pba_f": (fl, fh)}
            if pk is not None:
                entry["pba_k"] = _pba_interval(pk, q)
            row["levels"][q] = entry
        rows.append(row)
    return rows


def convergence() -> list[dict[str, Any]]:
    """Width at the median of X * Y as our atoms and pba's steps grow (X ~ U(1, 2), Y ~ N(2, 0.5))."""
    pba = _pba()
    out = []
    for atoms, steps in ((64, 50), (256, 200), (1024, 800)):
        r = od.evaluate(lambda x, y: x * y, od.Uniform(1, 2), od.Normal(2, 0.5), atoms=atoms)
        widths = r.cdf_band().quantile_width(list(LEVELS))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pf = _quiet(
                lambda steps=steps: pba.uniform(1, 2, steps=steps).mul(pba.norm(2, 0.5, steps=steps), method="f")
            )()
        pw = [(lambda iv: iv[1] - iv[0])(_pba_interval(pf, q)) for q in LEVELS]
        out.append({"atoms": atoms, "steps": steps, "ours": widths.tolist(), "pba_f": pw})
    return out


def _fmt_cell(iv: tuple[float, float], x: float) -> str:
    lo, hi = iv
    ok = lo - 1e-12 * (1 + abs(x)) <= x <= hi + 1e-12 * (1 + abs(x))
    return f"{hi - lo:.3g}" + ("" if ok else " (misses)")


def _figure(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, row in zip(axes.ravel(), rows, strict=True):
        case, r, pf, pk = row["case"], row["result"], row["pba_f"], row["pba_k"]
        y = np.linspace(1e-4, 1 - 1e-4, pf.steps)
        lo_x, hi_x = float(np.min(pf.left)), float(np.max(pf.right))
        pad = 0.05 * (hi_x - lo_x)
        ax.set_xlim(lo_x - pad, hi_x + pad)
        ax.fill_betweenx(y, pf.left, pf.right, color="C0", alpha=0.18, lw=0, label="pba, default (Frechet)")
        ax.plot(pf.left, y, color="C0", lw=0.8)
        ax.plot(pf.right, y, color="C0", lw=0.8)
        if pk is not None:
            ax.plot(pk.left, y, color="C2", lw=1, ls=":", label=f"pba, method '{case.known_label}'")
        r.cdf_band().plot(ax, label="opgraph.dcg certified band", color="C1")
        t = np.linspace(lo_x - pad, hi_x + pad, 801)
        ax.plot(t, [case.exact_cdf(v) for v in t], "k--", lw=0.9, label="exact CDF")
        ax.set_title(case.title, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    FIG.parent.mkdir(parents=True, exist_ok=True)
    from opgraph._base.fileio import atomic_open

    with atomic_open(FIG, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def _section(rows: list[dict[str, Any]], conv: list[dict[str, Any]]) -> str:
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Certified CDF bands vs pba",
        "",
        f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/band_vs_pba.py` on {_machine()} (1 thread),",
        f"Python {platform.python_version()}, pba {importlib.metadata.version('pba')}, {when}.",
        "",
        "Width of the interval each method gives for the exact q-quantile (the band's horizontal width at level q);",
        "`(misses)` marks an interval that does not contain the exact quantile (closed form or deterministic",
        "quadrature). Ours: `od.evaluate(...)` with default settings (256 atoms per input; 96 for the three uniforms),",
        "then `r.quantile_bounds(q)`; certified for the exact law. pba default: Frechet bounds (any dependence),",
        "rigorous but dependence-blind. pba with the known dependence (`i`: independent, `p`: perfect): zero-width",
        "quantile sets, as pba's p-boxes of precise laws carry no discretization error; they are estimates, not bounds.",
        "For `X / (X + Y)` no dependence option of pba is valid (X occurs in both operands of the division), so only",
        "the Frechet result is shown. CPU seconds: median of 3 after a warm-up; ours includes building the band.",
        "",
        "| case | q | exact | ours: width | pba default: width | pba known dep.: width | ours / pba default |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        case = row["case"]
        for q, e in row["levels"].items():
            ours_w = e["ours"][1] - e["ours"][0]
            f_w = e["pba_f"][1] - e["pba_f"][0]
            k = _fmt_cell(e["pba_k"], e["exact"]) if "pba_k" in e else "n/a"
            ratio = f"{ours_w / f_w:.3g}" if f_w > 0 else "n/a"
            lines.append(
                f"| {case.key} | {q:g} | {e['exact']:.6g} | {_fmt_cell(e['ours'], e['exact'])} | "
                f"{_fmt_cell(e['pba_f'], e['exact'])} | {k} | {ratio} |"
            )
    lines += [
        "",
        "| case | ours CPU s | pba default CPU s | pba known dep. CPU s | grid cells |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        c = row["cpu_s"]
        k = f"{c['pba_k']:.3g}" if math.isfinite(c["pba_k"]) else "n/a"
        cells = row["result"].cells.size if row["result"].cells is not None else 0
        lines.append(f"| {row['case'].key} | {c['ours']:.3g} | {c['pba_f']:.3g} | {k} | {cells} |")
    lines += [
        "",
        "Refinement on `X * Y` (widths at 5% / 50% / 95%): our atoms per input against pba's steps.",
        "",
        "| our atoms | ours | pba steps | pba default |",
        "|---|---|---|---|",
    ]
    for c in conv:
        ours_w = " / ".join(f"{w:.3g}" for w in c["ours"])
        pba_w = " / ".join(f"{w:.3g}" for w in c["pba_f"])
        lines.append(f"| {c['atoms']} | {ours_w} | {c['steps']} | {pba_w} |")
    lines += [
        "",
        "![certified bands vs pba](../../benchmarks/dcg/results/band_vs_pba.png)",
        "",
        "Reading it: on `X - X` our band is the step at 0 (width 0 at every level) where pba's default band is",
        "+-0.39 wide at the 5% level. On independent inputs our band is certified and narrower than pba's rigorous",
        "(Frechet) band at every level; pba's independent (`i`) result is narrower still but not a bound and misses the",
        "exact quantile. Our width shrinks like 1/atoms per input (the cells' widths); pba's Frechet width does not",
        "shrink with its steps.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str) -> None:
    replace_marked_block(DOC, START, END, section, header="# opgraph.dcg benchmark\n")


def main() -> None:
    rows = run()
    for row in rows:
        for q, e in row["levels"].items():
            print(
                f"{row['case'].key:14s} q={q:<5g} exact={e['exact']:<10.6g} ours={e['ours'][1] - e['ours'][0]:<10.3g}"
                f" pba_f={e['pba_f'][1] - e['pba_f'][0]:.3g}"
            )
    conv = convergence()
    for c in conv:
        print(f"X * Y refinement: atoms {c['atoms']} ours {c['ours']}, pba steps {c['steps']} {c['pba_f']}")
    _figure(rows)
    write_doc(_section(rows, conv))
    print(f"wrote {DOC} and {FIG}")


if __name__ == "__main__":
    main()
