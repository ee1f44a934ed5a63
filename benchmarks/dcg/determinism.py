"""Determinism sweep: a UQ case evaluated several times in one fresh process gives the same answer bit for bit.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/determinism.py [--only Piston,OTL] [--atoms 3]
[--calls 3]``. Each case runs in its own subprocess (so its first call is the process's first evaluation of it);
prints per case whether the atoms, weights and W1 bound of every later call equal the first's bits, with the bound
in hex and the CPU seconds of the first call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _one(cid: str, atoms: int, calls: int) -> dict[str, object]:
    import uq

    case = {c.id: c for c in uq.make_cases()}[cid]
    out = []
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(calls):
            r = case.evaluate(atoms=atoms)
            out.append((r.atoms.tobytes(), r.weights.tobytes(), float(r.w1_bound)))
    same = [o == out[0] for o in out[1:]]
    return {
        "case": cid,
        "same": all(same),
        "per_call": same,
        "bounds": [b.hex() for _, _, b in out],
        "cpu_s": time.process_time() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated case ids of uq.py (default: all)")
    ap.add_argument("--atoms", type=int, default=3)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_one(args.child, args.atoms, args.calls)))
        return
    import uq

    ids = [c.id for c in uq.make_cases()] if not args.only else args.only.split(",")
    print("| case | atoms | calls | bit-identical | bounds (hex) | CPU s | load |")
    print("|---|---:|---:|---|---|---:|---:|")
    for cid in ids:
        cmd = [sys.executable, __file__, "--child", cid, "--atoms", str(args.atoms), "--calls", str(args.calls)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if p.returncode:
            print(f"| {cid} | {args.atoms} | {args.calls} | error: {p.stderr.strip().splitlines()[-1]} | | | |")
            continue
        d = json.loads(p.stdout.strip().splitlines()[-1])
        bounds = ", ".join(sorted(set(d["bounds"])))
        print(
            f"| {cid} | {args.atoms} | {args.calls} | {d['same']} {d['per_call']} | {bounds} | {d['cpu_s']:.2f} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
