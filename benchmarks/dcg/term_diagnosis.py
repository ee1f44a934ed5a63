"""What each first-order term of the certified bound stands for, measured independently (issue 14 section 3).

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/term_diagnosis.py Borehole:4 Piston:4
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/term_diagnosis.py --boxes DampedOsc:8

``--boxes``: where the cellwise bound sits on the joint grid instead (cancellation rewrites and sub-cells off, so
the grid is the requested one): the share of boxes touching an end cell of some input (its tail, or a LogNormal's
cell reaching 0) against the inner boxes, with their masses, per quantizer (the default choice and mean-split).

For every input ``a`` of a ``benchmarks/dcg/uq.py`` case at fixed atoms: the engine's term of ``a``
(``r.bound_terms``, with ``opgraph.dcg.cancel`` off and on) against ``E|f(X) - f(X with x_a replaced by the atom of
its cell)|``, estimated from 2^17 pseudo-random points of the (truncated) input laws. That expectation is what
the term bounds under the quantization coupling (the walk's step along ``a``, summed over boxes), so a term far
above it (factor > 3) is lost by an enclosure. Prints one markdown table per case (units: the output's std).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg import cancel
from opgraph.dcg.truncation import truncate_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402  (the UQ suite and its cached references)


def _evaluate(case: Any, n: int, on: bool) -> Any:
    tok = cancel.ENABLED.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return case.evaluate(atoms=n)
    finally:
        cancel.ENABLED.reset(tok)


def diagnose(case: Any, n: int, points: int = 2**17, seed: int = 0) -> str:
    ref = uq.load_reference(case)
    before, after = _evaluate(case, n, False), _evaluate(case, n, True)
    dists = {f"x{i}": d for i, d in enumerate(case.dcg_inputs())}
    dists, _ = truncate_inputs(dists, case.dcg_kwargs.get("truncate"))
    g = np.random.default_rng(seed)
    x = [np.asarray(dists[f"x{i}"].ppf(g.uniform(size=points))) for i in range(case.d)]
    with np.errstate(all="ignore"):
        f0 = case.numpy(x)
    tb = {k.split()[1]: v / ref.std for k, v in before.bound_terms.items()}
    ta = {k.split()[1]: v / ref.std for k, v in after.bound_terms.items()}
    out = [
        f"{case.id} at {n} atoms: bound {before.w1_bound / ref.std:.3g} -> {after.w1_bound / ref.std:.3g}, true "
        f"{ref.w1(after.atoms, after.weights) / ref.std:.3g} (output stds)",
        "",
        "| input | law | term before | term after | E abs(f - f_a) | before / E | after / E |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(case.d):
        name = f"x{i}"
        q = dists[name].quantize(n, before.info["quantizers"][name])
        idx = np.clip(np.searchsorted(q.hi, x[i]), 0, q.atoms.size - 1)
        xa = list(x)
        xa[i] = q.atoms[idx]
        with np.errstate(all="ignore"):
            e = float(np.mean(np.abs(f0 - case.numpy(xa)))) / ref.std
        b, a = tb.get(name, 0.0), ta.get(name, 0.0)
        out.append(
            f"| {name} | {case.laws[i].kind} | {b:.3g} | {a:.3g} | {e:.2g} | {b / max(e, 1e-300):.3g} | "
            f"{a / max(e, 1e-300):.3g} |"
        )
    return "\n".join(out)


def last_grid(case: Any, n: int, quantizer: Any = "auto") -> tuple[Any, Any, Any, np.ndarray]:
    """``case`` at ``n`` atoms with its first-order cellwise bound: the result, and the last grid's evaluator, output
    value and per-box bound (cancellation rewrites, sub-cell pass and carry off)."""
    from opgraph.dcg import engine
    from opgraph.dcg.switches import scope

    seen: list[tuple[Any, Any, np.ndarray]] = []
    run = engine.Evaluator.run

    def spy(self: Any, rules: Any) -> Any:
        out = run(self, rules)
        seen.append((self, out[0], np.asarray(out[1])))
        return out

    # carry off: the fixed-atoms N/2 call (opgraph.dcg.carry) would be the last grid seen
    engine.Evaluator.run = spy  # type: ignore[method-assign]
    try:
        with scope({"cancel": False, "subcells": False, "carry": False}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = case.evaluate(atoms=n, quantizer=quantizer)
    finally:
        engine.Evaluator.run = run  # type: ignore[method-assign]
    return (r, *seen[-1])


def boxes(case: Any, n: int, quantizer: Any = "auto") -> str:
    """The cellwise bound of the output's grid split into boxes touching an input's end cell and inner boxes."""
    ref = uq.load_reference(case)
    r, ev, val, bb = last_grid(case, n, quantizer)
    idx = np.indices(bb.shape)
    end = np.zeros(bb.shape, dtype=bool)
    for j, m in enumerate(bb.shape):
        end |= (idx[j] == 0) | (idx[j] == m - 1)
    w = np.broadcast_to(ev._wbox(val.axes), bb.shape)
    q = sorted(set(r.info["quantizers"].values()))
    return (
        f"{case.id} at {n} atoms ({'+'.join(q)}; atoms {list(r.info['atoms_per_input'].values())}): cellwise bound "
        f"{bb.sum() / ref.std:.3g} std = end-cell boxes {bb[end].sum() / ref.std:.3g} (mass {w[end].sum():.3g}) + "
        f"inner boxes {bb[~end].sum() / ref.std:.3g} (mass {w[~end].sum():.3g}); true "
        f"{ref.w1(r.atoms, r.weights) / ref.std:.3g}"
    )


def main(argv: list[str] | None = None) -> None:
    cases = {c.id: c for c in uq.make_cases()}
    args = list(argv if argv is not None else sys.argv[1:])
    by_box = "--boxes" in args
    for spec in (a for a in args if a != "--boxes"):
        cid, n = spec.split(":")
        if by_box:
            case = cases[cid]
            ms = {f"x{i}": "meansplit" if law.kind == "lognormal" else "auto" for i, law in enumerate(case.laws)}
            print(boxes(case, int(n)))
            print(boxes(case, int(n), ms))
        else:
            print(diagnose(cases[cid], int(n)))
        print()


if __name__ == "__main__":
    main()
