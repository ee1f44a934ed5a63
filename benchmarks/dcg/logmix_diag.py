"""DampedOsc: what a second-order answer in log coordinates could certify (a measurement, no engine change).

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/logmix_diag.py 4 8

The idea measured (branch dosc-second, docs/benchmarks/dcg.md "DampedOsc second order in log coordinates"): on each
box of the grid, with ``u = log x`` (Normal coordinates of the LogNormal inputs), ``d_i = u_i - u'_i`` and ``h = log f``,
answer with the law of ``V' exp(sum_i phi_i(d_i))`` instead of the point mass ``V'``, where ``phi_i(d) = c_i^+ d`` above
the atom and ``c_i^- d`` below it. If ``G_i^+ / G_i^-`` enclose ``dh/du_i`` on the upper / lower half-cell leg of
:func:`opgraph.dcg.elastic.elasticities`'s one-coordinate-at-a-time path (the intervals the log-space bound already
computes before taking their magnitude), ``c_i^pm`` their midpoints and ``m_i^pm`` their radii, then
``|h(u) - h(u') - sum_i phi_i(d_i)| <= sum_i m_i |d_i|`` on the box, so

    E[|f(X) - V' e^{phi(d)}| ; box] <= |V'| (prod_i E[e^{phi_i(d_i) + m_i |d_i|}] - prod_i E[e^{phi_i(d_i)}])

(``f(u') = V'`` up to its rounding), each factor a closed form on the Normal cell
(:func:`opgraph.dcg.elastic.log_factor` with signed rates). This is the remainder of such an answer; the answer's own
lattice rounding would come on top. Printed per atom count, in the output's std: the engine's final bound and CPU s
(default switches), the grid's cellwise bound, with the log-space (elastic) point-mass bound, the remainder above taken
per box as the minimum with the latter, the same with one input's slope enclosure made a point (which input limits
it), the split by boxes with 0, 1, ... end cells, and two Monte Carlo costs (2^18 points): ``E|f - V'|`` (the
point-mass coupling, the floor of any point-mass certificate) and ``E|f - V' e^{g.d}|`` with the exact gradient
``g`` of ``log f`` at the atom (the floor of the log-linear answer).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg import elastic
from opgraph.dcg.switches import scope

sys.path.insert(0, str(Path(__file__).resolve().parent))
import term_diagnosis  # noqa: E402
import uq  # noqa: E402


def legs(ev: Any, val: Any, shape: tuple[int, ...]) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Per grid dimension, the enclosures of ``dh/du_j`` on its lower and upper half-cell legs (grid shape)."""
    axes = val.axes
    k = len(axes)
    out: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    cache: dict[Any, Any] = {}
    for j in range(k):
        cj: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        state = []
        for jj, a in enumerate(axes):
            lo, hi, at = (np.asarray(x, dtype=float) for x in (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms))
            cj[a] = (lo, hi) if jj <= j else (at, at)
            state.append("f" if jj <= j else "a")
        lo, hi, at = (
            np.asarray(x, dtype=float) for x in (ev.axes[axes[j]].lo, ev.axes[axes[j]].hi, ev.axes[axes[j]].atoms)
        )
        pair = []
        for label, half in (("l", (lo, at)), ("u", (at, hi))):
            cj[axes[j]] = half
            state[j] = label
            res = elastic.elasticities(ev.graph, ev.output, axes, cj, [True] * k, {j}, cache, state)
            assert res is not None
            g = res[1][j]
            pair.append((np.broadcast_to(g[0], shape), np.broadcast_to(g[1], shape)))
        out[j] = pair
    return out


def remainder(ev: Any, val: Any, shape: tuple[int, ...], lg: dict, point: int | None = None) -> np.ndarray:
    """Per box the remainder bound of the log-linear answer (module docstring); ``inf`` where an enclosure is."""
    axes = val.axes
    k = len(axes)
    t_a = np.zeros(shape)
    t_b = np.zeros(shape)
    with np.errstate(all="ignore"):
        for j, a in enumerate(axes):
            (l0, l1), (u0, u1) = lg[j]
            c_dn, m_dn = (l0 + l1) / 2, (l1 - l0) / 2
            c_up, m_up = (u0 + u1) / 2, (u1 - u0) / 2
            if j == point:
                m_dn = m_up = np.zeros(())
            mu, s = elastic._params(ev.dists[ev.graph.nodes[a].attrs["name"]])
            sh = [1] * k
            sh[j] = -1
            lo, hi, at = (
                np.log(np.maximum(np.asarray(x, dtype=float), 0.0)).reshape(sh)
                for x in (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms)
            )
            t_a = t_a + elastic.log_factor(mu, s, lo, hi, at, c_up + m_up, m_dn - c_dn)
            t_b = t_b + elastic.log_factor(mu, s, lo, hi, at, c_up, -c_dn)
        w = np.broadcast_to(ev._wbox(axes), shape)
        r = np.abs(np.broadcast_to(val.pt, shape)) * np.exp(t_b) * np.expm1(t_a - t_b) * w
    return np.where(np.isfinite(r) & (r >= 0), r, np.inf)


def diagnose(n: int, points: int = 2**18) -> list[str]:
    case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
    ref = uq.load_reference(case)
    s = ref.std
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        final = case.evaluate(atoms=n)
    cpu = time.process_time() - t0
    out = [
        f"DampedOsc atoms={n}: engine bound {final.w1_bound / s:.3g} std, true {ref.w1(final.atoms, final.weights) / s:.3g}"
        f" std, bound/true {final.w1_bound / ref.w1(final.atoms, final.weights):.3g}, {cpu:.1f} CPU s"
    ]
    with scope({"elastic": False}):
        r, ev, val, bb = term_diagnosis.last_grid(case, n)
    axes, shape, k = val.axes, bb.shape, len(val.axes)
    laws = {a: ev.dists[ev.graph.nodes[a].attrs["name"]] for a in axes}
    cells = {a: (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes}
    w = np.broadcast_to(ev._wbox(axes), shape)
    eb = elastic.box_bound(ev.graph, ev.output, axes, laws, cells, val.pt, w, shape)
    assert eb is not None
    old = np.minimum(bb, eb)
    t0 = time.process_time()
    lg = legs(ev, val, shape)
    rem = remainder(ev, val, shape, lg)
    cpu = time.process_time() - t0
    new = np.minimum(old, rem)
    fin = np.isfinite(rem)
    out.append(
        f"  grid {list(shape)}: cellwise {bb.sum() / s:.3g}; + log-space point-mass {old.sum() / s:.3g}; log-linear "
        f"remainder (min per box) {new.sum() / s:.3g} ({cpu:.1f} CPU s; finite on mass {w[fin].sum():.3g}: "
        f"{old[fin].sum() / s:.3g} -> {new[fin].sum() / s:.3g} there, the other boxes {old[~fin].sum() / s:.3g})"
    )
    names = [ev.graph.nodes[a].attrs["name"] for a in axes]
    one = {names[j]: round(float(np.minimum(old, remainder(ev, val, shape, lg, j)).sum() / s), 3) for j in range(k)}
    out.append(f"  with one input's slope enclosure a point: {one}")
    idx = np.indices(shape)
    ends = sum(((idx[j] == 0) | (idx[j] == shape[j] - 1)).astype(int) for j in range(k))
    for e in range(k + 1):
        sel = ends == e
        if w[sel].sum() > 1e-4:
            out.append(
                f"  boxes with {e} end cells: mass {w[sel].sum():.3g}, point-mass {old[sel].sum() / s:.3g}, "
                f"log-linear {new[sel].sum() / s:.3g} (finite remainder on mass {w[sel & fin].sum():.3g})"
            )
    g = np.random.default_rng(0)
    x = [np.asarray(d.ppf(g.uniform(size=points))) for d in case.dcg_inputs()]
    ix = tuple(np.clip(np.searchsorted(ev.axes[a].hi, x[i]), 0, ev.axes[a].size - 1) for i, a in enumerate(axes))
    flat = np.ravel_multi_index(ix, shape)
    mesh = [np.broadcast_to(m, shape) for m in np.meshgrid(*[ev.axes[a].atoms for a in axes], indexing="ij")]
    expo = np.zeros(points)
    for j, a in enumerate(axes):
        up, dn = list(mesh), list(mesh)
        up[j], dn[j] = mesh[j] * np.exp(1e-6), mesh[j] * np.exp(-1e-6)
        grad = ((np.log(case.numpy(up)) - np.log(case.numpy(dn))) / 2e-6).reshape(-1)
        expo += grad[flat] * (np.log(x[j]) - np.log(np.asarray(ev.axes[a].atoms)[ix[j]]))
    y = np.broadcast_to(val.pt, shape).reshape(-1)[flat]
    fx = case.numpy(x)
    out.append(
        f"  Monte Carlo 2^{points.bit_length() - 1}: point-mass coupling E|f - V'| {np.mean(np.abs(fx - y)) / s:.3g}, "
        f"log-linear E|f - V' e^(g.d)| {np.mean(np.abs(fx - y * np.exp(expo))) / s:.3g}; grid answer's true W1 "
        f"{ref.w1(r.atoms, r.weights) / s:.3g}"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    for n in argv if argv is not None else sys.argv[1:]:
        for line in diagnose(int(n)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
