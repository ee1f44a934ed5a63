"""Run the GPU subset of the energy cases with the NVML backend (and the time backend) on a CUDA machine.

Usage (on the GPU machine): ``PYTHONPATH=src python3 benchmarks/energy/gpu_subset.py --out DIR``.
Writes ``gpu_subset.json`` into DIR; ``benchmarks/energy/run.py`` folds it into docs/benchmarks/energy.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from opgraph._base.jsonio import write_json
from opgraph.energy.backends import NvmlBackend, TimeBackend
from opgraph.energy.cases import CASES
from opgraph.energy.suite import case_ids, evaluate_case


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--window", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", nargs="*", default=None)
    ap.add_argument("--backends", nargs="*", default=["nvml", "time"])
    ap.add_argument("--nvml-cases", nargs="*", default=None, help="cases for nvml (default: --cases)")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    ids = args.cases or case_ids(device="cuda", gpu_subset=True)
    out: dict = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "host": platform.node(),
        "window_s": args.window,
        "rounds": args.rounds,
        "results": {},
    }
    nvml = NvmlBackend(min_window_s=args.window)
    # how often does the energy counter change?
    h = nvml.handle
    vals, t_end = [], time.perf_counter() + 1.0
    while time.perf_counter() < t_end:
        vals.append(nvml.nvml.nvmlDeviceGetTotalEnergyConsumption(h))
    out["counter_probe"] = {"reads_per_s": len(vals), "distinct_values_per_s": len(set(vals))}
    print("counter probe:", out["counter_probe"], flush=True)
    out["nvml"] = nvml.describe()
    print("nvml:", out["nvml"], flush=True)
    import opgraph.energy.differ as differ

    for name, be in (("nvml", nvml), ("time", TimeBackend(device="cuda", min_window_s=0.02))):
        if name not in args.backends:
            continue
        rows = []
        for cid in (args.nvml_cases or ids) if name == "nvml" else ids:
            t0 = time.perf_counter()
            r = evaluate_case(
                CASES[cid], be, device="cuda", rounds=args.rounds, baselines=False, max_rounds=args.rounds + 2
            )
            d = r.__dict__.copy()
            d["wall_s"] = time.perf_counter() - t0
            rows.append(d)
            print(
                name,
                cid,
                "top1",
                r.top1,
                "cat",
                r.category,
                "knob",
                r.knob,
                "ratio",
                r.top_ratio,
                "findings",
                r.n_findings,
                "err",
                r.error,
                f"{d['wall_s']:.1f}s",
                flush=True,
            )
            for f in r.findings[:3]:
                print("   ", f, flush=True)
            out["results"][name] = rows
            Path(args.out).mkdir(parents=True, exist_ok=True)
            write_json(Path(args.out) / "gpu_subset.json", out)
    del differ


if __name__ == "__main__":
    main()
