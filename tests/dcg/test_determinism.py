"""A program's first evaluation in a fresh process equals the later ones bit for bit (issue 14, branch ulp-warm).

The first evaluation in a process once differed from the later ones by 1 ulp in the box-linear mixture's remainder
(``test_cancel._powers`` at 3 atoms), because :func:`opgraph.dcg.affine.mul` summed the error symbols in a set's
order, which followed the process-wide symbol ids. The check runs in a subprocess so that its first call really is
the process's first evaluation (this test process has evaluated other programs before).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import sys, warnings
sys.path.insert(0, {tests!r})
import numpy as np
from opgraph import dcg as od
import test_cancel as TC
out = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for fn in (TC._powers, TC._bore):
        for _ in range(3):
            r = od.evaluate(fn, *TC.LAWS[fn], atoms=3)
            out.append((fn.__name__, r.atoms.tobytes().hex(), r.weights.tobytes().hex(), float(r.w1_bound).hex()))
for name in ("_powers", "_bore"):
    calls = [o[1:] for o in out if o[0] == name]
    print(name, all(c == calls[0] for c in calls), [c[2] for c in calls])
"""


def test_first_evaluation_in_a_fresh_process_equals_the_later_ones():
    code = _CHILD.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        name, same, _ = line.split(" ", 2)
        assert same == "True", line
