"""Where the box-linear mixture's bound is loose: its terms beside what they bound, by Monte Carlo (issue 14 §3).

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/mix_slack.py OTL:4 Piston:4

For a ``benchmarks/dcg/uq.py`` case at fixed atoms (``Case:atoms``), the mixture that set the returned answer
(:func:`opgraph.dcg.boxlinear.mixture`, spied on; the call whose bound is the result's) is split into its terms and
each is put beside the quantity it certifies, estimated on the same boxes from ``--per-box`` pseudo-random points of
each box's cell-conditional input laws (stratified: every mixed box gets the same number of points):

- *remainder*: ``sum_b p_b R_b`` against ``sum_b p_b E[|f(X) - L_b(X)| | b]`` (``L_b`` the box's linear model);
- *rounding*: ``sum_b p_b (D_b + s_b)`` against ``sum_b p_b E[|sum_i (round(T_i) - T_i)| | b]`` (the coupling the
  certificate pays) and the rounding's own W1 (the unrounded mixture against the lattice answer, both as laws);
- *point-mass boxes*: the engine's bound of the boxes kept as point masses against ``E[|f(X) - V'_b|; b]``.

Also the true W1 of the answer (``uq``'s reference), of the unrounded linear mixture, and the slack (certified /
estimated) per term. Units: the output's std. A term whose estimate is itself far above the true W1 is at the
coupling's limit (only a finer or better answer helps there); a large slack is an enclosure's width.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import opgraph.dcg as od
from opgraph.dcg import boxlinear, taylor
from opgraph.dcg.truncation import truncate_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402  (the UQ suite and its cached references)


def spy_mixtures(case: Any, n: int) -> tuple[Any, list[dict[str, Any]]]:
    """``case`` at ``n`` atoms, with every :func:`boxlinear.mixture` call's arguments, names and result recorded."""
    calls: list[dict[str, Any]] = []
    mix, ans = boxlinear.mixture, boxlinear.answer
    names: list[list[str]] = []

    def spy_answer(ev: Any, graph: Any, val: Any, *a: Any, **kw: Any) -> Any:
        names.append([graph.nodes[x].attrs["name"] for x in val.axes])
        try:
            return ans(ev, graph, val, *a, **kw)
        finally:
            names.pop()

    def spy_mix(axes: Any, pt: Any, cells: Any, dists: Any, wbox: Any, box_bound: Any, linear: Any, *a: Any, **kw: Any):
        got = mix(axes, pt, cells, dists, wbox, box_bound, linear, *a, **kw)
        calls.append(
            {
                "axes": tuple(axes),
                "names": names[-1] if names else None,
                "pt": np.asarray(pt),
                "cells": cells,
                "dists": dists,
                "wbox": np.asarray(wbox),
                "box_bound": np.asarray(box_bound),
                "linear": linear,
                "got": got,
            }
        )
        return got

    piece = taylor._box_piece
    sub_slope = taylor._sub_slope

    def spy_piece(*a: Any, **kw: Any) -> Any:
        if kw.get("linear") is None:
            return piece(*a, **kw)
        if kw.get("forms") is None:
            kw["forms"] = {}
        forms = kw["forms"]
        got = piece(*a, **kw)
        forms["rest"] = kw["linear"].get("rest")
        forms["sub"] = subs[-1] if subs else None
        subs.clear()
        pieces.append(forms)
        return got

    def spy_sub(*a: Any, **kw: Any) -> Any:
        got = sub_slope(*a, **kw)
        subs.append(got)
        return got

    pieces: list[dict[str, Any]] = []
    subs: list[Any] = []
    taylor._box_piece, taylor._sub_slope = spy_piece, spy_sub  # type: ignore[assignment]
    boxlinear.mixture, boxlinear.answer = spy_mix, spy_answer  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = case.evaluate(atoms=n)
    finally:
        boxlinear.mixture, boxlinear.answer = mix, ans  # type: ignore[assignment]
        taylor._box_piece, taylor._sub_slope = piece, sub_slope  # type: ignore[assignment]
    for c in calls:  # the Taylor pass that gave each mixture its rest (the same array)
        c["forms"] = next((f for f in pieces if f.get("rest") is not None and f["rest"] is c["linear"]["rest"]), None)
    return r, calls


def _cond_sample(dist: Any, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Points of ``dist`` conditioned on ``[lo, hi]`` (rows: boxes) from uniforms ``u``."""
    flo, fhi = np.asarray(dist.cdf(lo), float), np.asarray(dist.cdf(hi), float)
    q = flo[:, None] + u * (fhi - flo)[:, None]
    x = np.asarray(dist.ppf(np.clip(q, 1e-300, 1 - 1e-16)), float)
    return np.clip(x, lo[:, None], hi[:, None])


def diagnose(case: Any, n: int, per_box: int = 64, seed: int = 0) -> dict[str, Any]:
    """The mixture's terms against their Monte Carlo estimates (output stds) for ``case`` at ``n`` atoms."""
    ref = uq.load_reference(case)
    t0 = time.process_time()
    r, calls = spy_mixtures(case, n)
    cpu = time.process_time() - t0
    mine = [c for c in calls if c["got"] is not None and abs(c["got"][2] - r.w1_bound) <= 1e-9 * r.w1_bound]
    out: dict[str, Any] = {
        "case": case.id,
        "atoms": n,
        "bound": r.w1_bound / ref.std,
        "true": ref.w1(r.atoms, r.weights) / ref.std,
        "method": r.info.get("bound_method"),
        "cpu_s": cpu,
        "mixtures": len(calls),
    }
    if not mine:
        return out
    c = mine[-1]
    atoms, weights, bound, info = c["got"]
    axes, names = c["axes"], c["names"]
    k = len(axes)
    shape = tuple(int(np.size(c["cells"][a][2])) for a in axes)
    w = np.broadcast_to(c["wbox"].astype(float), shape).reshape(-1)
    old = np.broadcast_to(c["box_bound"].astype(float), shape).reshape(-1)
    v = np.broadcast_to(c["pt"].astype(float), shape).reshape(-1)
    rest = np.asarray(c["linear"]["rest"], float).reshape(-1)
    coef = [np.broadcast_to(np.asarray(c["linear"]["c"][a], float), shape).reshape(-1) for a in axes]
    # which boxes were mixed: recompute the engine's choice from the lattice answer's terms is not exposed; the
    # mixed boxes are those whose mixture cost beat the old bound; the bound's parts give the totals
    delta = info["delta"]
    # the mixed boxes: the remainder part is sum over mixed of w rest; rebuild by the same rule as the engine
    # (w rest + w (disc + slack) < old): disc is not returned, so take the candidates with w rest < old and
    # check the total against info["remainder"] (printed)
    cand = np.isfinite(rest) & (w > 0) & (w * rest < old) & np.isfinite(v)
    for i in range(k):
        cand &= np.isfinite(coef[i])
    idx = np.unravel_index(np.arange(w.size), shape)
    dists = {nm: d for nm, d in zip([f"x{i}" for i in range(case.d)], case.dcg_inputs())}
    dists, _ = truncate_inputs(dists, case.dcg_kwargs.get("truncate"))
    g = np.random.default_rng(seed)
    boxes = np.flatnonzero(w > 0)
    xs: dict[str, np.ndarray] = {}
    lin = np.repeat(v[boxes], per_box).reshape(boxes.size, per_box)
    terms = []
    for i, a in enumerate(axes):
        lo, hi, at = (np.asarray(t, float) for t in c["cells"][a])
        j = idx[i][boxes]
        u = (g.permutation(per_box)[None, :] + g.uniform(size=(boxes.size, per_box))) / per_box  # stratified
        x = _cond_sample(c["dists"][a], lo[j], hi[j], u)
        xs[names[i]] = x
        d = x - at[j][:, None]
        t = coef[i][boxes][:, None] * d
        terms.append(t + (v[boxes][:, None] if i == 0 else 0.0))
        lin = lin + t
    cols = [xs[f"x{q}"].reshape(-1) for q in range(case.d)]
    with np.errstate(all="ignore"):
        fx = case.numpy(cols).reshape(boxes.size, per_box)
    e_rem = np.mean(np.abs(fx - lin), axis=1)
    e_pm = np.mean(np.abs(fx - v[boxes][:, None]), axis=1)
    rounded = sum(np.floor(t / delta + 0.5) * delta for t in terms)
    e_rnd = np.mean(np.abs(rounded - lin), axis=1)
    wb = w[boxes]
    mixed = cand[boxes]
    std = ref.std
    # the unrounded linear mixture and the rounded lattice law as laws (stratified samples, weighted)
    mw = np.repeat(wb[mixed] / per_box, per_box)
    pm_atoms, pm_w = v[boxes][~mixed], wb[~mixed]
    lin_law = (np.concatenate([lin[mixed].reshape(-1), pm_atoms]), np.concatenate([mw, pm_w]))
    rnd_law = (np.concatenate([rounded[mixed].reshape(-1), pm_atoms]), np.concatenate([mw, pm_w]))
    out.update(
        {
            "delta": delta / std,
            "boxes": int(boxes.size),
            "mass_mixed": float(np.sum(wb[mixed])),
            "rem_cert": info["remainder"] / std,
            "rem_cert_rebuilt": float(np.sum(wb[mixed] * rest[boxes][mixed])) / std,
            "rem_mc": float(np.sum(wb[mixed] * e_rem[mixed])) / std,
            "rnd_cert": info["discretization"] / std,
            "rnd_mc": float(np.sum(wb[mixed] * e_rnd[mixed])) / std,
            "rnd_w1": float(od.w1_discrete(*lin_law, *rnd_law)) / std,
            "pm_cert": info["point_mass_boxes"] / std,
            "pm_mc": float(np.sum(wb[~mixed] * e_pm[~mixed])) / std,
            "pm_mass": float(np.sum(wb[~mixed])),
            "pm_all_mc": float(np.sum(wb * e_pm)) / std,
            "true_linmix": ref.w1(*lin_law) / std,
            "true_f_mc": ref.w1(fx.reshape(-1), np.repeat(wb / per_box, per_box)) / std,
            "lattice_true": ref.w1(atoms, weights) / std,
        }
    )
    # which inputs carry the remainder: E|f - L| with input i's term exact (f - L along i's line) is not separable;
    # report instead the boxes' remainder mass by the number of end cells each box touches
    end = np.zeros(boxes.size, dtype=bool)
    for i in range(k):
        j = idx[i][boxes]
        end |= (j == 0) | (j == shape[i] - 1)
    out["rem_cert_end"] = float(np.sum((wb * rest[boxes])[mixed & end])) / std
    out["rem_mc_end"] = float(np.sum((wb * e_rem)[mixed & end])) / std
    out["mass_end"] = float(np.sum(wb[end]))
    fm = c.get("forms")
    if fm is not None:  # which remainder form gave each mixed box's rest (totals over the mixed boxes)
        sel = mixed
        for key in ("hess", "slope", "sub"):
            x = fm.get(key)
            if x is None:
                continue
            x = np.broadcast_to(np.asarray(x, float), shape).reshape(-1)[boxes]
            x = np.where(np.isfinite(x), x, np.nan)
            out[f"form_{key}"] = float(np.nansum((wb * x)[sel])) / std
            out[f"form_{key}_inf_mass"] = float(np.sum(wb[sel & ~np.isfinite(x)]))
            out[f"form_{key}_wins_mass"] = float(np.sum(wb[sel & (x <= rest[boxes] * (1 + 1e-8))]))
    return out


ROW = (
    "| {case}:{atoms} | {bound:.3g} | {true:.3g} | {rem_cert:.3g} | {rem_mc:.3g} | {rs:.1f} | {rnd_cert:.3g} | "
    "{rnd_mc:.3g} | {rnd_w1:.3g} | {ds:.1f} | {pm_cert:.3g} | {pm_mc:.3g} | {ps} | {true_linmix:.3g} | "
    "{rem_cert_end:.3g} / {rem_mc_end:.3g} |"
)
HEAD = (
    "| case:atoms | bound | true W1 | remainder cert | E abs(f - L) | slack | rounding cert | E abs(S) | rounding W1 | "
    "slack | point-mass cert | E abs(f - V') | slack | true W1 unrounded | end-cell boxes rem cert / MC |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def ab(cases: dict[str, Any], specs: list[str], switch: str, rounds: int, old_pieces: int | None = None) -> str:
    """Each ``Case:atoms`` with ``switch`` off and on, interleaved: bound, bound/true, CPU s (output stds).

    ``old_pieces``: :data:`opgraph.dcg.subslope.MAX_PIECES` for the runs with the switch off (main's 64 against the
    branch's 256: main's code in one process).
    """
    from opgraph.dcg import subslope
    from opgraph.dcg.switches import scope

    new_pieces = subslope.MAX_PIECES

    lines = [
        "| case:atoms | bound off | bound on | true off | true on | ratio off | ratio on | CPU s off | CPU s on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        cid, n = spec.split(":")
        case = cases[cid]
        ref = uq.load_reference(case)
        got: dict[bool, list[Any]] = {False: [], True: []}
        for _ in range(rounds):
            for on in (False, True):
                subslope.MAX_PIECES = new_pieces if on or old_pieces is None else old_pieces
                with scope({switch: on}), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.process_time()
                    r = case.evaluate(atoms=int(n))
                    got[on].append((r, time.process_time() - t0))
        row = []
        for on in (False, True):
            r = got[on][-1][0]
            row.append((r.w1_bound / ref.std, ref.w1(r.atoms, r.weights) / ref.std, min(t for _, t in got[on])))
        (b0, t0_, c0), (b1, t1, c1) = row
        lines.append(
            f"| {spec} | {b0:.4g} | {b1:.4g} | {t0_:.3g} | {t1:.3g} | {b0 / t0_:.3g} | {b1 / t1:.3g} | {c0:.2f} | {c1:.2f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="+", help="Case:atoms, e.g. OTL:4")
    p.add_argument("--per-box", type=int, default=64, help="Monte Carlo points per box (stratified)")
    p.add_argument("--ab", default=None, help="a switch name: each spec evaluated with it off then on (A/B), no MC")
    p.add_argument("--rounds", type=int, default=1, help="A/B rounds (interleaved)")
    p.add_argument("--old-pieces", type=int, default=None, help="with --ab: subslope.MAX_PIECES for the off runs")
    a = p.parse_args(argv)
    cases = {c.id: c for c in uq.make_cases()}
    if a.ab:
        print(ab(cases, a.specs, a.ab, a.rounds, a.old_pieces))
        return
    rows = []
    for spec in a.specs:
        cid, n = spec.split(":")
        d = diagnose(cases[cid], int(n), a.per_box)
        print(d, flush=True)
        if "rem_cert" in d:
            ps = f"{d['pm_cert'] / max(d['pm_mc'], 1e-300):.1f}" if d["pm_cert"] > 0 else "-"
            rows.append(
                ROW.format(
                    **d,
                    rs=d["rem_cert"] / max(d["rem_mc"], 1e-300),
                    ds=d["rnd_cert"] / max(d["rnd_mc"], 1e-300),
                    ps=ps,
                )
            )
    print(HEAD)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
