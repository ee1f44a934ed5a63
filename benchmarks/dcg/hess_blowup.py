"""Where the interval Hessian enclosures of a UQ case explode: per node, enclosure against sampled (branch hess-tight).

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/hess_blowup.py Piston:4 --boxes 300

For ``Case:atoms`` of ``benchmarks/dcg/uq.py``, the largest Taylor box pass that asked for linear models (the
box-linear mixture's) is captured; on ``--boxes`` random boxes of its grid, every node's second-order spread
``S2 = sum_{i<=k} |H_ik| h_i h_k`` (``h`` the cells' half-widths, ``1/2`` on the diagonal) from the box pass's
interval Hessian enclosures (:func:`opgraph.dcg.taylor.jets`, centred as in the engine) is divided by the largest
``S2`` over ``--points`` uniform points of the box (exact point Hessians). Printed per node: the median, 90th
percentile and largest finite ratio and the share of boxes where the enclosure is unbounded; then the same with
every node's value enclosure (``--oracle v``) or value and gradient enclosures (``--oracle vg``) replaced by their
sampled ranges (widened 10 %: not sound, a diagnosis of which part of the rules loses).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv
from opgraph.dcg import taylor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402


def capture(case: Any, n: int) -> tuple[Any, ...]:
    """The arguments of the largest mixture Taylor pass of ``case`` at ``n`` atoms."""
    caps: list[tuple[Any, ...]] = []
    piece = taylor._box_piece

    def spy(*a: Any, **kw: Any) -> Any:
        if kw.get("linear") is not None and a[6] is not None and np.ndim(a[6]) > 0:
            caps.append(a[:7])
        return piece(*a, **kw)

    taylor._box_piece = spy  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=n)
    finally:
        taylor._box_piece = piece  # type: ignore[assignment]
    return max(caps, key=lambda c: np.size(c[6]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--boxes", type=int, default=300)
    ap.add_argument("--points", type=int, default=48)
    ap.add_argument("--oracle", default="", help="'v' or 'vg': sampled value (and gradient) ranges")
    args = ap.parse_args()
    cid, n = args.spec.split(":")
    case = {c.id: c for c in uq.make_cases()}[cid]
    graph, output, axes, _pt, cells, _mom, wbox = capture(case, int(n))
    shape = np.shape(wbox)
    rng = np.random.default_rng(0)
    w = np.broadcast_to(wbox, shape).reshape(-1)
    live = np.flatnonzero(w > 0)
    boxes = rng.choice(live, size=min(args.boxes, live.size), replace=False)
    idx = np.unravel_index(boxes, shape)
    lo = {a: np.asarray(cells[a][0], float)[idx[i]] for i, a in enumerate(axes)}
    hi = {a: np.asarray(cells[a][1], float)[idx[i]] for i, a in enumerate(axes)}
    at = {a: np.asarray(cells[a][2], float)[idx[i]] for i, a in enumerate(axes)}
    hw = {a: np.where(np.isfinite(hi[a] - lo[a]), 0.5 * (hi[a] - lo[a]), 1.0) for a in axes}
    nb, p = len(boxes), args.points
    x = {a: lo[a][:, None] + (hi[a] - lo[a])[:, None] * rng.uniform(size=(nb, p)) for a in axes}
    rec: dict[int, Any] = {}
    node0 = taylor._node

    def keep(nd: Any, ops: Any, hess: bool) -> Any:
        j = node0(nd, ops, hess)
        if hess:
            rec[nd.id] = j
        return j

    def rng_of(v: Any) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(v[0]) * np.ones((nb, p))
        a, b = y.min(1), y.max(1)
        return a - 0.1 * (b - a), b + 0.1 * (b - a)

    taylor._node = keep  # type: ignore[assignment]
    try:
        taylor.jets(graph, output, {a: (x[a], x[a]) for a in axes}, hess=True)
        smp = dict(rec)
        rec.clear()

        def oracle(nd: Any, ops: Any, hess: bool) -> Any:
            j = node0(nd, ops, hess)
            if hess:
                if "v" in args.oracle:
                    j.v = rng_of(smp[nd.id].v)
                if "g" in args.oracle:
                    j.g = {i: rng_of(gg) for i, gg in smp[nd.id].g.items()}
                rec[nd.id] = j
            return j

        taylor._node = oracle  # type: ignore[assignment]
        taylor.jets(graph, output, {a: (lo[a], hi[a]) for a in axes}, hess=True, centre=at, centred=True)
        enc = dict(rec)
    finally:
        taylor._node = node0  # type: ignore[assignment]

    def s2(j: Any, sampled: bool) -> Any:
        t: Any = 0.0
        for (i, k), h in j.h.items():
            hi_, hk = (hw[i][:, None], hw[k][:, None]) if sampled else (hw[i], hw[k])
            t = t + iv.mag(h) * hi_ * hk * (0.5 if i == k else 1.0)
        return t

    print(f"{args.spec} oracle={args.oracle or 'none'}: node, op, operands, enclosure S2 / sampled S2 over boxes")
    for nid in sorted(enc):
        if not enc[nid].h or nid not in smp:
            continue
        e = np.asarray(s2(enc[nid], False)) * np.ones(nb)
        s = np.max(np.asarray(s2(smp[nid], True)) * np.ones((nb, p)), axis=1)
        with np.errstate(all="ignore"):
            ratio = np.where(s > 0, e / s, np.inf)
        fin = np.isfinite(ratio)
        nd = graph.nodes[nid]
        q90 = np.quantile(ratio[fin], 0.9) if fin.any() else np.nan
        top = np.max(ratio[fin]) if fin.any() else np.nan
        print(
            f"  %{nid:<3d} {nd.op:9s} {list(nd.inputs)!s:10s} median {np.median(ratio):9.3g} p90 {q90:9.3g} "
            f"max {top:9.3g} unbounded {np.mean(~fin):.2f}"
        )


if __name__ == "__main__":
    main()
