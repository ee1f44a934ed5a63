"""Where DampedOsc's cellwise bound sits at 2, 4 and 8 atoms: boxes by their number of end-cell axes.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/moreatoms_diag.py [--before] 2 4 8

The cancellation rewrites and the sub-cell pass are off, so the bound is the grid's own cellwise bound. Per group of
boxes (how many of the 7 inputs sit in an end cell: a tail, or a LogNormal's cell reaching 0): mass, the bound, a
Monte Carlo estimate (2^19 points) of what the quantization coupling really costs there (``E|f - y|``, ``y`` the
box's atom), the product-form envelope's moment ``m`` (:mod:`opgraph.dcg.multienv`), ``E f`` and ``y P``, in the
output's std (uq.py's reference). ``--before``: inner cells' envelope factors as before :mod:`opgraph.dcg.cellmoments`
(the supremum of the factor on the cell times its mass).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from opgraph.dcg import cellmoments, multienv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import term_diagnosis  # noqa: E402
import uq  # noqa: E402


def diagnose(n: int, points: int = 2**19) -> str:
    case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
    ref = uq.load_reference(case)
    r, ev, val, bb = term_diagnosis.last_grid(case, n)
    shape = bb.shape
    axes = [ev.axes[a] for a in val.axes]
    w = np.broadcast_to(ev._wbox(val.axes), shape)
    y = np.broadcast_to(val.pt, shape)
    m = np.broadcast_to(multienv.grid_moment(val.menv, val.axes, ev._menv_factor), shape)
    g = np.random.default_rng(0)
    x = [np.asarray(d.ppf(g.uniform(size=points))) for d in case.dcg_inputs()]
    f = case.numpy(x)
    idx = tuple(np.clip(np.searchsorted(ax.hi, x[i]), 0, ax.size - 1) for i, ax in enumerate(axes))
    flat = np.ravel_multi_index(idx, shape)
    size = int(np.prod(shape))
    ef = np.bincount(flat, f, size).reshape(shape) / points
    ed = np.bincount(flat, np.abs(f - y.reshape(-1)[flat]), size).reshape(shape) / points
    nend = np.zeros(shape, dtype=int)
    ii = np.indices(shape)
    for j, s in enumerate(shape):
        nend += (ii[j] == 0) | (ii[j] == s - 1)
    s = ref.std
    out = [
        f"DampedOsc, atoms {[ax.size for ax in axes]}: cellwise bound {bb.sum() / s:.3g} std, coupling E|f - y| "
        f"{ed.sum() / s:.3g}, true W1 {ref.w1(r.atoms, r.weights) / s:.3g}, envelope total {m.sum() / s:.3g}, "
        f"E f {f.mean() / s:.3g}",
        "",
        "| end axes | mass | bound | E abs(f - y) (MC) | envelope m | E f (MC) | y p | bound / E abs(f - y) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in range(len(shape) + 1):
        sel = nend == e
        if not sel.any() or w[sel].sum() < 1e-4:
            continue
        out.append(
            f"| {e} | {w[sel].sum():.3g} | {bb[sel].sum() / s:.3g} | {ed[sel].sum() / s:.3g} | {m[sel].sum() / s:.3g} "
            f"| {ef[sel].sum() / s:.3g} | {(y * w)[sel].sum() / s:.3g} | {bb[sel].sum() / max(ed[sel].sum(), 1e-300):.3g} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    if "--before" in args:
        args.remove("--before")
        cellmoments.exact_kind = lambda *a: False  # type: ignore[assignment]
        print("(before: supremum factors on inner cells)")
    for n in args:
        print(diagnose(int(n)))
        print()


if __name__ == "__main__":
    main()
