"""Paper-size AsymResLNet10 (width 64) on a CUDA GPU: FFA, BP, FA (and optionally the AE controls).

Run on the device machine (see docs/benchmarks/ffa.md for the exact command):

    PYTHONPATH=src python3 benchmarks/ffa/gpu_paper_size.py --data .ffa_gpu_data/mnist10k.npz --out $OUT

Writes ``gpu_results.json`` (per-epoch histories, robustness, timings, device) and two figures to ``--out``.
Each method gets ``--budget-s`` wall seconds at most (training stops after the epoch that passes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from opgraph import ffa  # noqa: E402
from opgraph._base.jsonio import dumps
from opgraph.ffa import figures  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", default="ffa,bp,fa")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-weights", action="store_true", help="save the FFA pair's state dict (ffa_pair.pt)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    info = {
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "data": args.data,
        "width": args.width,
        "epochs_requested": args.epochs,
        "budget_s_per_method": args.budget_s,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    print(dumps(info), flush=True)
    ds = ffa.data.load(args.data, n_train=args.n_train)
    runs = {}
    results = {}
    for method in args.methods.split(","):
        torch.manual_seed(args.seed)
        pair = ffa.mirror(ffa.models.asym_resnet10(in_channels=1, n_classes=10, width=args.width))
        t0 = time.perf_counter()
        res = ffa.train(
            pair, ds, method=method, epochs=args.epochs, seed=args.seed, device=dev, max_time_s=args.budget_s
        )
        if dev == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        rob = ffa.robustness(
            pair, ds, noise=[0.0, 0.001, 0.1, 0.5, 1.0], iterations=3, fgsm_eps=[0.05, 0.1, 0.2], n=2000
        )
        epoch_s = [h["epoch_s"] for h in res.history]
        key = method if args.seed == 0 else f"{method}-s{args.seed}"
        runs[key] = {
            "history": res.history,
            "wall_s": wall,
            "epochs_done": len(res.history),
            "median_epoch_s": sorted(epoch_s)[len(epoch_s) // 2],
            "final": res.final,
            "best": res.best(),
            "robustness": rob.to_dict(),
        }
        results[method] = res
        f = res.final
        print(
            f"{method}: {len(res.history)} epochs in {wall:.1f}s, acc {f['test_acc']:.2f} r {f['recon_corr']:.3f} "
            f"best {res.best()}",
            flush=True,
        )
        print(rob, flush=True)
        if method == "ffa" and args.save_weights:
            torch.save({k: v.cpu() for k, v in pair.state_dict().items()}, out / "ffa_pair.pt")
        if method == "ffa":
            with torch.no_grad():
                x = torch.as_tensor(ds.x_test[:64]).to(dev)
                rec = pair.reconstruct(x).cpu().numpy()
            fig = figures.image_grid({"input": ds.x_test[:10], "B(F(x))": rec[:10]}, title="paper-size FFA")
            fig.savefig(out / "gpu_ffa_reconstructions.png", dpi=90)
        with open(out / "gpu_results.json", "w") as fh:
            json.dump({"info": info, "runs": runs}, fh, indent=1)
    figures.learning_curves(results).savefig(out / "gpu_learning_curves.png", dpi=90)
    print("done", os.listdir(out), flush=True)


if __name__ == "__main__":
    main()
