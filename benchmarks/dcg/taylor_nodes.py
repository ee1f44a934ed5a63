"""Where the Taylor box bound's enclosures blow up: per node, on one box of a uqtestfuns function.

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/taylor_nodes.py Piston --atoms 4 [--box 1,1,1,1,1,1,1]
      [--pair 1,1] [--graph -1] [--samples 300]

The function is evaluated once with ``od.evaluate(..., atoms=N)``; every graph the engine hands to
:func:`opgraph.dcg.taylor.box_bound` is recorded (the original and the cancellation rewrite, :mod:`opgraph.dcg.cancel`)
and ``--graph`` picks one (default: the last). On the box ``--box`` (cell index per input) it prints, node by node,
the width of the value and gradient enclosures over the box and the Hessian entry ``--pair`` against the ranges
sampled at random points of the box (point passes: no dependency), and then the ratio enclosure / sampled maximum of
the output's Hessian entries as the box shrinks about its atom (factors 1, 1/2, 1/4, 1/8, 1/16). A sampled range is
a lower estimate of the true range, so the ratios overstate the loss a little. Nothing is written; the numbers
quoted in docs/dcg.md ("Piston's Hessian enclosures") come from this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def record(name: str, atoms: int) -> list[tuple[Any, int, list[int], dict[int, Any]]]:
    """The graphs, outputs, axes and cells that ``od.evaluate`` passes to the Taylor box bound."""
    import uqtf_coverage as u

    from opgraph import dcg as od
    from opgraph.dcg import taylor

    f = u.build_function(name)
    laws = [u.map_marginal(m) for m in f.prob_input.marginals]
    params = dict(f.parameters.items()) if f.parameters is not None else {}

    def fn(*x: Any) -> Any:
        out = f._evaluate(u.as_row(x), **params)
        return out.reshape(-1)[0] if isinstance(out, np.ndarray) else out

    calls: list[tuple[Any, int, list[int], dict[int, Any]]] = []
    orig = taylor.box_bound

    def spy(graph: Any, output: int, axes: Any, pt: Any, cells: Any, *args: Any, **kw: Any) -> Any:
        calls.append((graph, output, list(axes), cells))
        return orig(graph, output, axes, pt, cells, *args, **kw)

    taylor.box_bound = spy  # type: ignore[assignment]
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            od.evaluate(fn, *laws, atoms=atoms, progress=False)
    finally:
        taylor.box_bound = orig  # type: ignore[assignment]
    return calls


def _rng(d: dict[Any, Any], key: Any) -> tuple[float, float]:
    x = d.get(key)
    if x is None:
        return 0.0, 0.0
    return float(np.min(x[0])), float(np.max(x[1]))


def per_node(graph: Any, axes: list[int], cells: dict[int, Any], idx: list[int], pair: tuple[int, int], n: int) -> None:
    """Print each node's enclosure widths over the box against sampled ranges."""
    from opgraph.dcg import taylor

    box = {
        a: (np.asarray(cells[a][0][i : i + 1], float), np.asarray(cells[a][1][i : i + 1], float))
        for a, i in zip(axes, idx, strict=True)
    }
    cen = {a: np.asarray(cells[a][2][i : i + 1], float) for a, i in zip(axes, idx, strict=True)}
    lo = np.array([box[a][0][0] for a in axes])
    hi = np.array([box[a][1][0] for a in axes])
    x = lo + (hi - lo) * np.random.default_rng(0).random((n, len(axes)))
    pts = {a: (x[:, k], x[:, k]) for k, a in enumerate(axes)}
    p, q = (axes[pair[0]], axes[pair[1]])
    print(f"box {idx}: " + ", ".join(f"x{k} [{lo[k]:.4g}, {hi[k]:.4g}]" for k in range(len(axes))))
    print(
        f"{'node':>4} {'op':8} {'value enc/sampled':>18} {'grad x' + str(pair[0]) + ' enc/sampled':>22}   H{pair} enclosure vs sampled"
    )
    for node in graph.nodes:
        if node.op in ("input", "const"):
            continue
        j = taylor.jets(graph, node.id, box, True, centre=cen)
        s = taylor.jets(graph, node.id, pts, True)
        vv, sv = (float(np.min(j.v[0])), float(np.max(j.v[1]))), (float(np.min(s.v[0])), float(np.max(s.v[1])))
        eg, sg = _rng(j.g, p), _rng(s.g, p)
        eh, sh = _rng(j.h, (p, q)), _rng(s.h, (p, q))

        def ratio(e: tuple[float, float], t: tuple[float, float]) -> str:
            w = t[1] - t[0]
            return f"{(e[1] - e[0]) / w:.3g}" if w > 0 else "-"

        print(
            f"{node.id:>4} {node.op:8} {ratio(vv, sv):>18} {ratio(eg, sg):>22}   "
            f"[{eh[0]:.3g}, {eh[1]:.3g}] vs [{sh[0]:.3g}, {sh[1]:.3g}]"
        )


def shrink(graph: Any, out: int, axes: list[int], cells: dict[int, Any], idx: list[int], n: int) -> None:
    """Ratio enclosure / sampled max of the output's Hessian entries on boxes shrunk about the atom."""
    from opgraph.dcg import intervals as iv
    from opgraph.dcg import taylor

    print("box shrunk about its atom: Hessian entries' enclosure / sampled max (median, max); gradients likewise")
    for fac in (1.0, 0.5, 0.25, 0.125, 0.0625):
        box, cen = {}, {}
        for a, i in zip(axes, idx, strict=True):
            lo, hi, at = float(cells[a][0][i]), float(cells[a][1][i]), float(cells[a][2][i])
            box[a] = (np.array([at - (at - lo) * fac]), np.array([at + (hi - at) * fac]))
            cen[a] = np.array([at])
        j = taylor.jets(graph, out, box, True, centre=cen)
        lo = np.array([box[a][0][0] for a in axes])
        hi = np.array([box[a][1][0] for a in axes])
        x = lo + (hi - lo) * np.random.default_rng(0).random((n, len(axes)))
        s = taylor.jets(graph, out, {a: (x[:, k], x[:, k]) for k, a in enumerate(axes)}, True)
        hr = [
            float(np.max(iv.mag(h))) / max(float(np.max(iv.mag(s.h[key]))), 1e-300)
            for key, h in j.h.items()
            if key in s.h
        ]
        gr = [
            float(np.max(iv.mag(j.g[a]))) / max(float(np.max(iv.mag(s.g[a]))), 1e-300)
            for a in axes
            if a in j.g and a in s.g
        ]
        print(f"  width x{fac:<7} H: {np.median(hr):9.3g} {max(hr):9.3g}   grad: {np.median(gr):7.3g} {max(gr):7.3g}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a uqtestfuns function (Piston, RobotArm, OTLCircuit, WingWeight ...)")
    ap.add_argument("--atoms", type=int, default=4)
    ap.add_argument("--box", default="", help="cell index per input, comma-separated (default: 1 for every input)")
    ap.add_argument("--pair", default="1,1", help="the Hessian entry (input positions) followed node by node")
    ap.add_argument("--graph", type=int, default=-1, help="which recorded graph (0: first; -1: last)")
    ap.add_argument("--samples", type=int, default=300)
    a = ap.parse_args(argv)
    calls = record(a.name, a.atoms)
    if not calls:
        print("the Taylor box bound was not tried on this function (see info['taylor'] of the result)")
        return
    graph, out, axes, cells = calls[a.graph]
    idx = [int(c) for c in a.box.split(",")] if a.box else [min(1, int(np.size(cells[x][2])) - 1) for x in axes]
    pair = tuple(int(c) for c in a.pair.split(","))
    print(f"{a.name} at {a.atoms} atoms: {len(calls)} graph(s) recorded, graph {a.graph} has {len(graph.nodes)} nodes")
    per_node(graph, axes, cells, idx, (pair[0], pair[1]), a.samples)
    shrink(graph, out, axes, cells, idx, a.samples)


if __name__ == "__main__":
    main()
