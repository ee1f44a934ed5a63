"""Quotient-form derivative enclosures of ``u / w`` (``opgraph.dcg.hessdiv``, switch ``hess_quotient``).

Soundness: on random boxes the gradient and Hessian enclosures of quotients whose numerator and denominator share
inputs contain the exact derivatives (central differences) at points of the box. Tightness: on an OTL-like ratio
``a b / (a b + c)`` the enclosures with the switch on are inside those with it off, strictly narrower on some box.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg import hessdiv, switches, taylor
from opgraph.dcg import intervals as iv
from opgraph.graph import trace

PROGRAMS = {
    "shared": lambda a, b, c: a * b / (a * b + c),
    "otl_like": lambda a, b, c: (c + 0.74) * a * (b + 9) / (a * (b + 9) + c),
    "nested": lambda a, b, c: a / (b + c / (a + b)),
    "sqrt_den": lambda a, b, c: (a + c) / np.sqrt(a * a + b),
}
BOX = {"a": (1.0, 3.0), "b": (0.5, 2.0), "c": (0.5, 3.0)}


def _boxes(rng, k=40):
    out = {}
    for name, (lo, hi) in BOX.items():
        x = rng.uniform(lo, hi, (k, 2))
        out[name] = (x.min(1), x.max(1))
    return out


def _jet(g, out, box, on):
    ids = {n.attrs["name"]: n.id for n in g.nodes if n.op == "input"}
    with switches.scope({"hess_quotient": on}):
        return taylor.jets(g, out, {ids[nm]: box[nm] for nm in ids}, hess=True), ids


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_enclosures_contain_the_derivatives(name):
    fn = PROGRAMS[name]
    g = trace(fn, "a", "b", "c")
    out = g.outputs[0]
    rng = np.random.default_rng(3)
    box = _boxes(rng)
    jet, ids = _jet(g, out, box, True)
    names = ["a", "b", "c"]
    h = 1e-4
    for _ in range(20):
        t = {nm: box[nm][0] + rng.uniform(size=box[nm][0].shape) * (box[nm][1] - box[nm][0]) for nm in names}

        def f(t=t, **kw):
            return fn(*(kw.get(nm, t[nm]) for nm in names))

        for i, ni in enumerate(names):
            gi = (f(**{ni: t[ni] + h}) - f(**{ni: t[ni] - h})) / (2 * h)
            lo, hi = jet.g[ids[ni]]
            assert np.all(gi >= lo - 1e-6) and np.all(gi <= hi + 1e-6)
            for nk in names[i:]:
                if ni == nk:
                    hik = (f(**{ni: t[ni] + h}) - 2 * f() + f(**{ni: t[ni] - h})) / h**2
                else:
                    hik = (
                        f(**{ni: t[ni] + h, nk: t[nk] + h})
                        - f(**{ni: t[ni] + h, nk: t[nk] - h})
                        - f(**{ni: t[ni] - h, nk: t[nk] + h})
                        + f(**{ni: t[ni] - h, nk: t[nk] - h})
                    ) / (4 * h * h)
                key = tuple(sorted((ids[ni], ids[nk])))
                lo, hi = jet.h.get(key, (np.zeros(()), np.zeros(())))
                assert np.all(hik >= lo - 1e-4) and np.all(hik <= hi + 1e-4), (name, ni, nk)


def test_tighter_on_an_otl_like_ratio():
    g = trace(PROGRAMS["otl_like"], "a", "b", "c")
    out = g.outputs[0]
    box = _boxes(np.random.default_rng(5))
    off, _ = _jet(g, out, box, False)
    on, _ = _jet(g, out, box, True)
    tot_off = sum(iv.mag(x) for x in off.h.values())
    tot_on = sum(iv.mag(x) for x in on.h.values())
    for key, (lo, hi) in on.h.items():
        assert np.all(lo >= off.h[key][0]) and np.all(hi <= off.h[key][1])
    assert np.all(tot_on <= tot_off) and np.any(tot_on < 0.9 * tot_off)


def test_switch_is_registered_and_on():
    assert "hess_quotient" in switches.capture()
    assert hessdiv.ENABLED.get() is True
