"""Collect the layout space (NCHW / channels-last per convolution) on a CUDA GPU, timed with CUDA events.

Run on a GPU machine from the repository root (PYTHONPATH=src), files go to <out>/gpu-layout:

    PYTHONPATH=src python benchmarks/perf/gpu_layout.py --out $OUT --graphs 24 --configs 40

The npz files carry measure_meta["gpu"]; train and evaluate them anywhere with
`benchmarks/perf/run.py --gpu-data <out>/gpu-layout`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from opgraph._base.jsonio import dumps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--graphs", type=int, default=24)
    ap.add_argument("--configs", type=int, default=40)
    ap.add_argument("--scale", type=float, default=4.0, help="input size scale (GPU kernels need bigger inputs)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from opgraph.perf import zoo
    from opgraph.perf.collect import collect_layout
    from opgraph.perf.measure import MeasureSettings

    t0 = time.perf_counter()
    specs = zoo.generate(args.graphs, args.seed, scale=args.scale)
    res = collect_layout(
        specs,
        Path(args.out) / "gpu-layout",
        n_configs=args.configs,
        settings=MeasureSettings(rounds=3, reps=5, warmup=3, timer="cuda"),
        seed=args.seed,
        progress=False,
    )
    summary = {
        "seconds": time.perf_counter() - t0,
        "graphs": [
            {"name": r["name"], "noise": r["meta"].get("noise"), "tau": r["meta"].get("tau_between_rounds")}
            for r in res
        ],
    }
    print(dumps(summary))


if __name__ == "__main__":
    main()
