"""exactlaw._with_slack pads every finite cell end outward, the finite end of a half-infinite cell included."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw

EPS = float(np.finfo(float).eps)


def _laws(kind: str, m: float, s: float):
    return od.Normal(m, s) if kind == "normal" else od.LogNormal(m, s)


@pytest.mark.parametrize(
    ("kind", "m", "s"), [("normal", 1000.0, 1.0), ("normal", -1000.0, 1.0), ("lognormal", 0.0, 0.001)]
)
@pytest.mark.parametrize("method", ["quantile", "meansplit"])
def test_cells_of_a_law_a_few_ulps_off_nest_in_the_padded_cells(kind, m, s, method):
    """The replacement's law has ``m`` and ``s`` rounded by a few ulps: its cells' ends move by a few ulps of their
    magnitude. The padded cells must contain them: the tail cells' finite ends too (Normal(1000, 1): the first
    cell's upper end 998.85 and the last cell's lower end 1001.15; unpadded, the law at m + 2 ulps puts mass above
    the first cell's end)."""
    q = _laws(kind, m, s).quantize(8, method)
    out = exactlaw._with_slack(q, 0.0)
    for dm, ds in ((2, 2), (-2, -2), (2, -2), (-2, 2)):
        # values move by about 2 ulps: a Normal's m and s relatively, a LogNormal's log-mean by 2 eps absolutely
        m_p = m * (1 + dm * EPS) if kind == "normal" else m + dm * EPS
        qp = _laws(kind, m_p, s * (1 + ds * EPS)).quantize(8, method)
        fin = np.isfinite(qp.lo)
        assert np.all(qp.lo[fin] >= out.lo[fin]), (dm, ds, qp.lo - out.lo)
        fin = np.isfinite(qp.hi)
        assert np.all(qp.hi[fin] <= out.hi[fin]), (dm, ds, qp.hi - out.hi)


def test_half_infinite_cells_finite_ends_move_by_eight_ulps():
    q = od.Normal(1000.0, 1.0).quantize(4, "quantile")
    out = exactlaw._with_slack(q, 0.0)
    assert out.lo[0] == -np.inf and out.hi[-1] == np.inf
    assert out.hi[0] == q.hi[0] + 8 * EPS * abs(q.hi[0])
    assert out.lo[-1] == q.lo[-1] - 8 * EPS * abs(q.lo[-1])
    # a LogNormal: the support's end 0 stays, the last cell's finite lower end moves out
    q = od.LogNormal(0.0, 0.5).quantize(4, "quantile")
    out = exactlaw._with_slack(q, 0.0)
    assert out.lo[0] == 0.0 and out.lo[-1] == q.lo[-1] - 8 * EPS * abs(q.lo[-1])
