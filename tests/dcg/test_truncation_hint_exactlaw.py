"""The truncate= hint names only arguments of fn, also where an exact-law node replaced a subexpression."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

from opgraph import dcg as od


def _undamped(m, c1, c2, r, f1, t1):  # uqtestfuns' UndampedOscillator; c1 + c2 becomes an exact Normal
    w0 = np.sqrt((c1 + c2) / m)
    return 3 * r - np.abs(2 * f1 / m / w0**2 * np.sin(w0 * t1 / 2))


def test_hint_of_an_exact_law_node_is_a_truncate_value_evaluate_accepts():
    laws = [od.Normal(*p) for p in [(1, 0.05), (1, 0.1), (0.1, 0.01), (0.5, 0.05), (1, 0.2), (1, 0.2)]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = od.evaluate(_undamped, *laws, atoms=4)
    assert math.isinf(r.w1_bound)
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, od.UnboundedWarning))
    hint = re.search(r"pass truncate=(\S+) to evaluate", text)
    assert hint, text
    assert "exact law" not in hint.group(1)  # was {'node 6 (add) ... (exact law)': 1e-15, ...}: not an argument
    value = eval(hint.group(1), {})  # noqa: S307 - a number or a dict literal written by the library
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = od.evaluate(_undamped, *laws, atoms=4, truncate=value)
    assert math.isfinite(t.w1_bound) and 0 < t.dropped_mass < 1e-9
