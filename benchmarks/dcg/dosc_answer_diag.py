"""Diagnostic (branch dosc-answer): where DampedOsc's answer's CDF error sits, tail boxes mixed or point masses.

On one grid (atoms per input, default ``6,6,6,6,6,6,4``) the case is evaluated twice in one process, with
:data:`opgraph.dcg.logsubbox.MIX_TAILS` off (the default: boxes with a half-line cell keep their point mass) and on
(their log-linear models mixed). The last log-linear mixture call is recorded with :mod:`dosc_pointmass_diag`'s spy.
For each setting it prints, in output std units:

- the answer's true W1 (against the suite's reference atoms) and its split ``int |F_answer - F_ref| dt`` over output
  regions (reference quantile bands), with the signed integral ``int (F_answer - F_ref) dt`` per band (one-signed
  error shows as |signed| close to the unsigned);
- the mixture's pieces *before the lattice*: with ``N`` Monte Carlo points ``X`` of the true law, the law of
  ``M(X)`` (``M`` = the box's point value ``V'`` on point-mass boxes, its log-linear model ``L`` on mixed boxes)
  against the law of ``f(X)``: its 1-D W1 (sorted samples), the coupling cost ``E|f - M|`` and the mean shift
  ``E[M - f]``, split into point-mass and mixed boxes, and by whether the box has a half-line cell; and the same W1
  with each mixed box's model shifted by its Monte Carlo conditional mean ``E[f - M | B]`` (an oracle centring,
  in-sample, so slightly optimistic).

    PYTHONPATH=src python benchmarks/dcg/dosc_answer_diag.py [6,6,6,6,6,6,4] [log2 points]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402
from dosc_pointmass_diag import _CALLS, grid_of, locate, setup  # noqa: E402  (the mixture calls' spy)

from opgraph.dcg import logsubbox  # noqa: E402

BANDS = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)


def cdf_split(atoms: np.ndarray, weights: np.ndarray, ref: np.ndarray) -> list[tuple[float, float]]:
    """Per reference-quantile band: (int |F_a - F_r| dt, int (F_a - F_r) dt) on the merged support."""
    ref = np.sort(ref)
    o = np.argsort(atoms)
    a, wa = atoms[o], weights[o] / weights.sum()
    t = np.union1d(a, ref)
    fa = np.cumsum(wa)[np.clip(np.searchsorted(a, t, side="right") - 1, -1, a.size - 1)]
    fa = np.where(np.searchsorted(a, t, side="right") == 0, 0.0, fa)
    fr = np.searchsorted(ref, t, side="right") / ref.size
    dt = np.diff(t)
    diff = (fa - fr)[:-1]
    edges = [ref[min(int(q * ref.size), ref.size - 1)] for q in BANDS]
    edges[0], edges[-1] = -np.inf, np.inf
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = (t[:-1] >= lo) & (t[:-1] < hi)
        out.append((float(np.sum(np.abs(diff[s]) * dt[s])), float(np.sum(diff[s] * dt[s]))))
    return out


def pieces(case: uq.Case, call: dict, n: int) -> dict[str, np.ndarray]:
    """Sample X of the true law; return f(X), the pre-lattice piece value M(X), and box flags (module docstring)."""
    grid = grid_of(call)
    cells, k = grid["cells"], len(grid["cells"])
    pt, coef, mixed = grid["pt"], grid["c"], grid["mixed"]
    tail = grid["tails"].any(axis=0)
    at = locate(case, cells, n)
    f, u, idx, b = (at[x] for x in ("f", "u", "idx", "b"))
    lin = pt[b] + sum(coef[j][b] * (u[j] - cells[j][2][idx[j]]) for j in range(k))
    m = np.where(mixed[b], lin, pt[b])
    return {"f": f, "m": m, "mixed": mixed[b], "tail": tail[b], "box": b}


def main() -> None:
    """Command line: see the module docstring."""
    case, ref, atoms, log2n = setup("6,6,6,6,6,6,4", 20)
    std = ref.std
    n = 2**log2n
    bands = " | ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(BANDS[:-1], BANDS[1:]))
    for mix in (False, True):
        logsubbox.MIX_TAILS = mix
        _CALLS.clear()
        t0 = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = case.evaluate(atoms=atoms, progress=False)
        cpu = time.process_time() - t0
        true = ref.w1(r.atoms, r.weights)
        print(f"\nMIX_TAILS={mix}: bound {r.w1_bound / std:.4f} std, true W1 {true / std:.5f} std, CPU {cpu:.1f} s")
        sp = cdf_split(np.asarray(r.atoms, float), np.asarray(r.weights, float), ref.atoms)
        print(f"answer's CDF error by reference quantile band ({bands}): |.| then signed, std")
        print("  abs    " + " ".join(f"{a / std:+.5f}" for a, _ in sp))
        print("  signed " + " ".join(f"{s / std:+.5f}" for _, s in sp))
        p = pieces(case, _CALLS[-1], n)
        f, m = p["f"], p["m"]
        w1_pre = float(np.mean(np.abs(np.sort(f) - np.sort(m))))
        print(f"pieces before the lattice: W1(law M(X), law f(X)) {w1_pre / std:.5f} std (MC, {n} points)")
        # oracle centring: each mixed box's model shifted by its MC conditional mean E[f - M | B] (same samples)
        nb = int(p["box"].max()) + 1
        cnt = np.bincount(p["box"], minlength=nb)
        dm = np.bincount(p["box"], weights=f - m, minlength=nb) / np.maximum(cnt, 1)
        mc = np.where(p["mixed"], m + dm[p["box"]], m)
        w1_c = float(np.mean(np.abs(np.sort(f) - np.sort(mc))))
        print(
            f"  mixed models centred at their boxes' MC conditional means (oracle): W1 {w1_c / std:.5f} std, "
            f"E|f - M| mixed {np.sum(np.abs(f - mc)[p['mixed']]) / n / std:.5f} std"
        )
        for name, sel in [
            ("point mass, half-line", ~p["mixed"] & p["tail"]),
            ("point mass, inner", ~p["mixed"] & ~p["tail"]),
            ("mixed, half-line", p["mixed"] & p["tail"]),
            ("mixed, inner", p["mixed"] & ~p["tail"]),
        ]:
            print(
                f"  {name:22s} mass {sel.mean():.4f}  E|f - M| {np.sum(np.abs(f - m)[sel]) / n / std:.5f}  "
                f"E[M - f] {np.sum((m - f)[sel]) / n / std:+.5f} std"
            )


if __name__ == "__main__":
    main()
