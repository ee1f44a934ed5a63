"""One CPU benchmark run: train a CPU-sized AsymResLNet10 with one method, evaluate, write a JSON.

    OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 \
    nice -n 10 .venv/bin/python benchmarks/ffa/run_cpu.py --dataset mnist10k --method ffa --width 16 \
        --epochs 60 --budget-s 780

The run stops after the epoch during which ``--budget-s`` wall seconds have passed (so that each run takes
under 15 minutes on 2 shared cores); the JSON records epochs done, wall and CPU seconds. Then
``benchmarks/ffa/report.py`` writes docs/benchmarks/ffa.md from all JSON files in benchmarks/ffa/results/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from opgraph import ffa  # noqa: E402
from opgraph._base.jsonio import write_json
from opgraph._base.provenance import cpu_model  # noqa: E402
from opgraph.ffa.analysis import occlusion_mask  # noqa: E402

HERE = Path(__file__).resolve().parent
# the MNIST subset lies in ../shared/data next to the checkout (as in docs/ffa.md); --data overrides
DATA = {"mnist10k": str(HERE.parents[2] / "shared" / "data" / "mnist10k.npz"), "fashion": "fashion-mnist"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=list(DATA), default="mnist10k")
    ap.add_argument("--data", default=None, help="override the data source")
    ap.add_argument("--method", default="ffa")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--budget-s", type=float, default=780.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the issue allows both of the 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = ffa.data.load(args.data or DATA[args.dataset])
    torch.manual_seed(args.seed)
    pair = ffa.mirror(ffa.models.asym_resnet10(in_channels=1, n_classes=10, width=args.width))
    c0, t0 = time.process_time(), time.perf_counter()
    res = ffa.train(
        pair,
        ds,
        method=args.method,
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        max_time_s=args.budget_s,
    )
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    rob = ffa.robustness(pair, ds, noise=[0.0, 0.1, 0.5, 1.0], iterations=3, fgsm_eps=[0.05, 0.1], n=1000)
    out = {
        "dataset": args.dataset,
        "data": ds.name,
        "method": args.method,
        # what B holds for untrained-decoder methods (report.py marks runs without this field as older code)
        "decoder": ffa.METHODS[args.method]["decoder"],
        "width": args.width,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "epochs_requested": args.epochs,
        "epochs_done": len(res.history),
        "budget_s": args.budget_s,
        "train_wall_s": train_wall,
        "train_cpu_s": train_cpu,
        "final": res.final,
        "best": res.best(),
        "history": res.history,
        "robustness": rob.to_dict(),
        "n_weights": pair.n_weights(),
        "cpu": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    if args.method in ("ffa", "ae-bp", "ae-fa"):
        x = torch.as_tensor(ds.x_test[:128])
        g = torch.Generator().manual_seed(0)
        noisy = x + np.sqrt(0.1) * torch.randn(x.shape, generator=g)
        den = ffa.denoise(pair, noisy, max_steps=100)
        one = ffa.denoise(pair, noisy, iterations=1)
        mask = occlusion_mask(pair.input_shape)
        inp = ffa.inpaint(pair, x, mask, max_steps=100)
        hole = mask[0, 0].numpy() == 0

        def r(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])

        out["inference"] = {
            "denoise_r_noisy": r(noisy.numpy(), x.numpy()),
            "denoise_r_one_pass": r(one.images, x.numpy()),
            "denoise_r_sampler": r(den.images, x.numpy()),
            "denoise_steps": den.n_steps,
            "inpaint_r_hidden_half": r(inp.images[:, :, hole], x.numpy()[:, :, hole]),
        }
    name = f"{args.dataset}-{args.method}-w{args.width}{args.tag}.json"
    write_json(HERE / "results" / name, out)
    f = res.final
    print(
        f"{name}: {len(res.history)} epochs, acc {f['test_acc']:.2f} r {f['recon_corr']:.3f}, wall {train_wall:.0f}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
