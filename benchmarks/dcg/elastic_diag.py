"""DampedOsc: the grid's first-order bound, the log-space box bound, the coupling cost and the first-order floor.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/elastic_diag.py 4 8

Per atom count (uq.py's DampedOsc case, cancellation rewrites, sub-cells and the log-space pass off: the grid's own
cellwise bound), in the output's std: the cellwise bound; the per-box minimum with :func:`opgraph.dcg.elastic.box_bound`
and the mass where the latter is finite; the coupling cost ``E|f - y|`` (Monte Carlo, 2^19 points, ``y`` the box's
atom), below which no coupling bound goes; and the log-space bound with the exact gradient of ``log f`` at each atom
and no remainder (central differences): what a first-order certificate of this grid could reach at best.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from opgraph.dcg import elastic
from opgraph.dcg.switches import scope

sys.path.insert(0, str(Path(__file__).resolve().parent))
import term_diagnosis  # noqa: E402
import uq  # noqa: E402


def diagnose(n: int, points: int = 2**19) -> str:
    case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
    ref = uq.load_reference(case)
    with scope({"elastic": False}):
        r, ev, val, bb = term_diagnosis.last_grid(case, n)
    axes, shape, k = val.axes, bb.shape, len(val.axes)
    laws = {a: ev.dists[ev.graph.nodes[a].attrs["name"]] for a in axes}
    cells = {a: (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes}
    w = np.broadcast_to(ev._wbox(axes), shape)
    t0 = time.process_time()
    eb = elastic.box_bound(ev.graph, ev.output, axes, laws, cells, val.pt, w, shape)
    cpu = time.process_time() - t0
    assert eb is not None
    g = np.random.default_rng(0)
    x = [np.asarray(d.ppf(g.uniform(size=points))) for d in case.dcg_inputs()]
    idx = tuple(np.clip(np.searchsorted(ev.axes[a].hi, x[i]), 0, ev.axes[a].size - 1) for i, a in enumerate(axes))
    flat = np.ravel_multi_index(idx, shape)
    y = np.broadcast_to(val.pt, shape).reshape(-1)
    coupling = np.bincount(flat, np.abs(case.numpy(x) - y[flat]), int(np.prod(shape))).sum() / points
    # the first-order floor: exact gradient of log f at the atoms (central differences), no remainder
    mesh = [np.broadcast_to(m, shape) for m in np.meshgrid(*[ev.axes[a].atoms for a in axes], indexing="ij")]
    total = np.zeros(shape)
    for j, a in enumerate(axes):
        up, dn = list(mesh), list(mesh)
        up[j], dn[j] = mesh[j] * np.exp(1e-6), mesh[j] * np.exp(-1e-6)
        grad = (np.log(case.numpy(up)) - np.log(case.numpy(dn))) / 2e-6
        lo, hi, at = (np.asarray(c, dtype=float) for c in cells[a])
        mu, s = elastic._params(laws[a])
        sh = [1] * k
        sh[j] = at.size
        with np.errstate(divide="ignore"):
            lf = elastic.log_factor(
                mu, s, np.log(lo).reshape(sh), np.log(hi).reshape(sh), np.log(at).reshape(sh), np.abs(grad)
            )
        total += lf
    floor = float(np.sum(np.abs(np.broadcast_to(val.pt, shape)) * np.expm1(total) * w))
    fin = np.isfinite(eb)
    s = ref.std
    return (
        f"DampedOsc, atoms {list(shape)}: cellwise {bb.sum() / s:.3g} std; with the log-space bound "
        f"{np.minimum(bb, eb).sum() / s:.3g} ({cpu:.2f} CPU s; finite on mass {w[fin].sum():.3g}); coupling cost "
        f"{coupling / s:.3g}; first-order floor {floor / s:.3g}; true W1 {ref.w1(r.atoms, r.weights) / s:.3g}"
    )


def main(argv: list[str] | None = None) -> None:
    for n in argv if argv is not None else sys.argv[1:]:
        print(diagnose(int(n)))


if __name__ == "__main__":
    main()
