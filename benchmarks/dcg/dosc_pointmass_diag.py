"""Diagnostic (branch dosc-tail): DampedOsc's point-mass boxes, their certified bounds against their true costs.

On one grid (atoms per input, default ``6,6,6,6,6,6,4``: the case's ``target_w1`` grid) the log-linear mixture's
arguments are recorded (:func:`opgraph.dcg.boxlinear.mixture` as called by :func:`opgraph.dcg.loglinear.answer`):
the boxes' held point-mass bounds ``old`` (the engine's per-box bound after the log-space passes) and the models'
remainders. The boxes that keep their point mass are approximated by ``not (w rest < old)`` (the mixture also drops
boxes whose lattice cost tips them; the printed total of the mixture's own ``point_mass_boxes`` is beside it). Per
class of box (number of half-line cells, i.e. cells reaching 0 or infinity, and on which inputs) it prints: mass,
the certified ``sum old`` and a Monte Carlo estimate (2^20 points by default) of ``sum_b P(B) E[|f(X) - V'| | B]``,
the true first-order cost the point-mass bound certifies (its floor). Output std units.

    PYTHONPATH=src python benchmarks/dcg/dosc_pointmass_diag.py 6,6,6,6,6,6,4 [log2 points]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import boxlinear  # noqa: E402

_CALLS: list[dict[str, Any]] = []
_mixture = boxlinear.mixture


def _record(axes: Any, pt: Any, cells: Any, dists: Any, wbox: Any, box_bound: Any, linear: Any, *a: Any) -> Any:
    out = _mixture(axes, pt, cells, dists, wbox, box_bound, linear, *a)
    if len(a) > 1 and a[1] is not None:  # the log-linear call (it passes its disc_share)
        _CALLS.append(
            {
                "axes": tuple(axes),
                "pt": np.array(pt, dtype=float),
                "cells": {x: tuple(np.array(c, dtype=float) for c in cells[x]) for x in axes},
                "wbox": np.array(wbox, dtype=float),
                "old": np.array(box_bound, dtype=float),
                "rest": np.array(linear["rest"], dtype=float),
                "c": [np.array(linear["c"][x], dtype=float) for x in axes],
                "info": None if out is None else dict(out[3]),
            }
        )
    return out


def grid_of(call: dict[str, Any]) -> dict[str, Any]:
    """A recorded mixture call's boxes, flat: the arrays every diagnosis of it starts from.

    Returns:
        ``cells`` (per axis ``(lo, hi, atoms)``, 1-D, log space), ``shape``, per box ``w`` (mass), ``old`` (the
        engine's bound), ``rest`` (the linear model's remainder), ``pt`` (the value at the atom), ``c`` (per axis the
        model's coefficients), ``mixed`` (the mixture keeps the box's model) and ``tails`` (axis x box: the box's cell
        on that axis is a half-line).
    """
    cells = [tuple(np.asarray(c).reshape(-1) for c in call["cells"][a]) for a in call["axes"]]
    k = len(cells)
    shape = tuple(c[2].size for c in cells)

    def flat(x: Any) -> np.ndarray:
        return np.broadcast_to(x, shape).reshape(-1)

    w, old, rest, pt = (flat(call[x]) for x in ("wbox", "old", "rest", "pt"))
    with np.errstate(all="ignore"):
        mixed = np.isfinite(rest) & (w * rest < old)
    tails = np.array(
        [
            flat(
                (~np.isfinite(cells[j][0]) | ~np.isfinite(cells[j][1])).reshape([-1 if i == j else 1 for i in range(k)])
            )
            for j in range(k)
        ]
    )
    c = [flat(x) for x in call.get("c") or []]
    return {
        "cells": cells,
        "shape": shape,
        "w": w,
        "old": old,
        "rest": rest,
        "pt": pt,
        "c": c,
        "mixed": mixed,
        "tails": tails,
    }


def locate(case: Any, cells: list[tuple[np.ndarray, ...]], n: int, seed: int = 1) -> dict[str, Any]:
    """``n`` points of the case's true law, ``f`` there, their log coordinates ``u``, cells ``idx`` and boxes ``b``."""
    g = np.random.default_rng(seed)
    cols = [law.sample(g, n) for law in case.laws]
    with np.errstate(all="ignore"):
        f = case.numpy(cols)
    u = [np.log(c) for c in cols]
    idx = [np.clip(np.searchsorted(cells[j][1], u[j]), 0, cells[j][1].size - 1) for j in range(len(cells))]
    b = np.ravel_multi_index(tuple(idx), tuple(c[2].size for c in cells))
    return {"cols": cols, "f": f, "u": u, "idx": idx, "b": b}


def report(case: Any, call: dict[str, Any], std: float, log2n: int, seed: int = 1) -> None:
    """Print the per-class table of one recorded mixture call (module docstring)."""
    grid = grid_of(call)
    k, shape = len(grid["cells"]), grid["shape"]
    w, old, pt, mixed = grid["w"], grid["old"], grid["pt"], grid["mixed"]
    pm = ~mixed & (w > 0)
    tails = grid["tails"]
    ntail = tails.sum(axis=0)
    n = 2**log2n
    at = locate(case, grid["cells"], n, seed)
    f, b = at["f"], at["b"]
    cost = np.bincount(b, weights=np.abs(f - pt[b]), minlength=w.size) / n  # P(B) E[|f - V'| | B], estimated
    sq = np.bincount(b, weights=np.abs(f - pt[b]) ** 2, minlength=w.size) / n
    info = call["info"] or {}
    print(
        f"mixture: bound {info.get('bound', float('nan')) / std:.4f} = remainder {info.get('remainder', 0) / std:.4f}"
        f" + lattice {info.get('discretization', 0) / std:.4f} + point-mass boxes "
        f"{info.get('point_mass_boxes', 0) / std:.4f} std; boxes mixed (mass) {info.get('boxes_mixed', 0):.3f}"
    )
    print(f"whole grid: sum old {old.sum() / std:.4f}, MC sum P E|f - V'| {cost.sum() / std:.4f} std")
    print("| class | boxes | mass | sum old (std) | MC cost (std) | MC s.e. | old / cost |")
    print("|---|---|---|---|---|---|---|")

    def row(name: str, sel: np.ndarray) -> None:
        c = float(cost[sel].sum())
        se = float(np.sqrt(max(sq[sel].sum() / n - (c**2) / n, 0.0)))
        o = float(old[sel].sum())
        print(
            f"| {name} | {int(sel.sum())} | {w[sel].sum():.4f} | {o / std:.4f} | {c / std:.4f} | {se / std:.1g} | "
            f"{o / max(c, 1e-300):.2f} |"
        )

    row("point-mass, all", pm)
    row("point-mass, no half-line cell", pm & (ntail == 0))
    row("point-mass, one half-line cell", pm & (ntail == 1))
    row("point-mass, 2+ half-line cells", pm & (ntail >= 2))
    for j in range(k):
        row(f"point-mass, half-line on input {j} ({case.laws[j].params})", pm & tails[j])
    row("mixed (their old, for scale)", mixed)
    fin_pm = pm & (ntail == 0)
    # the largest inner point-mass boxes
    top = np.argsort(-np.where(fin_pm, old, 0))[:8]
    print("largest inner point-mass boxes: index, mass, old (std), MC cost (std), old / cost")
    for t in top:
        print(
            f"  {np.unravel_index(t, shape)} {w[t]:.2e} {old[t] / std:.2e} {cost[t] / std:.2e} "
            f"{old[t] / max(cost[t], 1e-300):.1f}"
        )
    ratio = old[pm] / np.maximum(cost[pm], 1e-300)
    wts = old[pm]
    o = np.argsort(ratio)
    cum = np.cumsum(wts[o]) / wts.sum()
    qs = [ratio[o][np.searchsorted(cum, q)] for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    print(
        "old / MC cost over point-mass boxes, quantiles weighted by old (10/25/50/75/90 %):", [f"{q:.2f}" for q in qs]
    )


def setup(default_atoms: str | None, default_log2: int) -> tuple[Any, Any, dict[str, int], int]:
    """The diagnosis scripts' command line: DampedOsc, its reference, the spy on the mixture, atoms and log2 points.

    ``argv[1]``: atoms per input, comma-separated (``default_atoms`` where absent; required where None);
    ``argv[2]``: log2 of the sample points (``default_log2`` where absent).
    """
    case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
    ref = uq.load_reference(case)
    boxlinear.mixture = _record
    spec = sys.argv[1] if len(sys.argv) > 1 or default_atoms is None else default_atoms
    atoms = {f"x{i}": int(v) for i, v in enumerate(spec.split(","))}
    return case, ref, atoms, int(sys.argv[2]) if len(sys.argv) > 2 else default_log2


def main() -> None:
    """Command line: see the module docstring."""
    case, ref, atoms, log2n = setup(None, 20)
    s = ref.std
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = case.evaluate(atoms=atoms, progress=False)
    cpu = time.process_time() - t0
    print(f"bound {r.w1_bound / s:.4f} std, true W1 {ref.w1(r.atoms, r.weights) / s:.5f} std, CPU {cpu:.1f} s")
    if _CALLS:
        report(case, _CALLS[-1], s, log2n)


if __name__ == "__main__":
    main()
