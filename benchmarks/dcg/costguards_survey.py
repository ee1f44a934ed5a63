"""Equal-bounds survey of the cost guards (:mod:`opgraph.dcg.costguards`): each case with the guards off, then on.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/costguards_survey.py [PREFIX ...]`` (only the rows
whose name starts with a PREFIX). Prints per row both bounds, SAME / TIGHTER / LOOSER, and the CPU seconds of both
calls (one process, the off call first: the times are indicative only; ``nodecost_bench.py`` times them properly).
Cases: classic programs of the benchmark suite (``run.py``'s laws, built inline), the cancellation tests'
programs, the UQ suite at small atom counts, and the ODEs at 150 and 1,000 steps.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import costguards

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "dcg"))
import test_cancel as TC  # noqa: E402
import uq  # noqa: E402

warnings.simplefilter("ignore")
rows = []
U = lambda: od.Uniform(0, 1)  # noqa: E731
classic = {
    "S1-2": (lambda a, b: a + b, lambda: [U(), U()]),
    "S2": (lambda a, b, c: a + b + c, lambda: [od.Exponential(1.0)] * 3),
    "M1": (lambda a, b: a * b, lambda: [U(), U()]),
    "M3": (lambda a, b: a * b, lambda: [od.LogNormal(0, 0.3), od.LogNormal(0, 0.4)]),
    "R1": (lambda a, b: a / b, lambda: [U(), od.Uniform(1, 2)]),
    "E1": (lambda a, b, c: np.maximum(np.maximum(a, b), c), lambda: [U(), U(), U()]),
    "N1": (lambda z: np.sin(z), lambda: [od.Normal(0, 1)]),
    "P1": (lambda x, y, z: x * y + np.sin(z), lambda: [U(), od.Normal(0, 1), od.Normal(0, 1)]),
    "PH1": (lambda L, g: 2 * np.pi * np.sqrt(L / g), lambda: [od.Uniform(0.9, 1.1), od.Normal(9.81, 0.05)]),
    "D1a": (lambda x: x - x, lambda: [od.Normal(0, 1)]),
    "D1c": (lambda x, y: (x + y) - y, lambda: [od.Normal(0, 1), U()]),
}
for cid, (fn, ins) in classic.items():
    for a in (4, 16):
        rows.append((f"{cid}:{a}", lambda fn=fn, ins=ins, a=a: od.evaluate(fn, *ins(), atoms=a)))
for fn, laws in TC.LAWS.items():
    for a in (3, 4):
        rows.append((f"{fn.__name__}:{a}", lambda fn=fn, laws=laws, a=a: od.evaluate(fn, *laws, atoms=a)))
cases = {c.id: c for c in uq.make_cases()}
for cid, a in [
    ("Ishigami", 8),
    ("OTL", 4),
    ("Piston", 2),
    ("Borehole", 2),
    ("MLP", 2),
    ("Sulfur", 4),
    ("DampedOsc", 2),
    ("Undamped", 4),
    ("WingWeight", 2),
]:
    if cid in cases:
        rows.append((f"{cid}:{a}", lambda c=cases[cid], a=a: c.evaluate(atoms=a)))
rows.append(("ODE-osc150:2", lambda: uq.ode_oscillator(150).evaluate(atoms=2)))
rows.append(("ODE-log150:2", lambda: uq.ode_logistic(150).evaluate(atoms=2)))
rows.append(("ODE-osc1000:2", lambda: uq.ode_oscillator(1000).evaluate(atoms=2)))
rows.append(("ODE-log1000:2", lambda: uq.ode_logistic(1000).evaluate(atoms=2)))
rows.append(("ODE-osc1000:4", lambda: uq.ode_oscillator(1000).evaluate(atoms=4)))
rows.append(("ODE-log1000:4", lambda: uq.ode_logistic(1000).evaluate(atoms=4)))
only = sys.argv[1:]
for name, f in rows:
    if only and not any(name.startswith(o) for o in only):
        continue
    out = []
    for en in (False, True):
        tok = costguards.ENABLED.set(en)
        t = time.process_time()
        r = f()
        dt = time.process_time() - t
        costguards.ENABLED.reset(tok)
        out.append((float(r.w1_bound), dt))
    (b0, t0), (b1, t1) = out
    flag = "SAME" if b0 == b1 else ("TIGHTER" if b1 < b0 else "LOOSER")
    print(f"{name:16s} off {b0!r:24s} on {b1!r:24s} {flag:8s} {t0:6.2f}s -> {t1:6.2f}s", flush=True)
