"""Programs whose values are all tiny (below ``engine.TINY_SCALE``): the second-order certificates square values and
moments, which underflow in float64 below ~1e-154, so they are switched off and the first-order bound stays sound.

Before: ``a * b`` with ``a ~ N(3e-170, 1e-170)`` raised ZeroDivisionError in ``semidiscrete.scores``, and
``1e-170 * a * b`` or ``a + 1e-170 * b`` returned bounds below the true W1 (0.047 and 0.031 x scale against true
0.066 and 0.042): W1 is positively homogeneous, so the same program at scale 1 gives the reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg.w1 import w1_discrete

S = 1e-170

CASES = {
    "tiny constant factor": (lambda s: lambda a, b: s * a * b, lambda s: (od.Normal(3, 1), od.Uniform(1, 2))),
    "tiny input": (lambda s: lambda a, b: a * b, lambda s: (od.Normal(3 * s, s), od.Uniform(1, 2))),
    "tiny sum": (lambda s: lambda a, b: a + s * b, lambda s: (od.Normal(0, s), od.Uniform(0, 1))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiny_programs_keep_a_sound_bound(name):
    make_f, make_in = CASES[name]
    r = od.evaluate(make_f(S), *make_in(S), atoms=8)
    assert "tiny_scale" in r.info and "second-order certificates off" in r.info["tiny_scale"]
    # The same program at scale 1, on a fine grid (its own certified bound added): the true W1 scales by S.
    fine = od.evaluate(make_f(1.0), *make_in(1.0), atoms=256)
    true_low = w1_discrete(r.atoms / S, r.weights, fine.atoms, fine.weights) - fine.w1_bound
    assert np.isfinite(r.w1_bound) and r.w1_bound / S >= true_low
    # and it is not the scale-1 bound's second-order value (which underflowed before)
    assert r.info["bound_method"] in ("cellwise", "path")


# subject: which second-order certificate answers at scale one, not the mixture
@pytest.mark.usefixtures("point_mass_answers")
def test_scale_one_keeps_its_second_order_certificates():
    make_f, make_in = CASES["tiny input"]
    r = od.evaluate(make_f(1.0), *make_in(1.0), atoms=8)
    assert "tiny_scale" not in r.info and r.info["bound_method"] == "semi-discrete"


def test_a_tiny_guard_constant_does_not_switch_them_off():
    r = od.evaluate(lambda a, b: np.log(a * b + 1e-300), od.Uniform(1, 3), od.Uniform(1, 2), atoms=8)
    assert "tiny_scale" not in r.info
