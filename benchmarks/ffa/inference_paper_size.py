"""Visual inference (denoise, inpaint, imagine) with the paper-size FFA pair trained on the H100.

    .venv/bin/python benchmarks/ffa/inference_paper_size.py --weights ffa_pair.pt --seed 1

The weights come from ``gpu_paper_size.py --save-weights`` (5 MB, not committed). Runs on the CPU (one thread);
writes ``results/gpu-h100-ffa-inference.json`` and ``results/gpu-h100-ffa-inference.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from opgraph import ffa  # noqa: E402
from opgraph._base.jsonio import dumps, write_json
from opgraph.ffa import figures  # noqa: E402
from opgraph.ffa.analysis import occlusion_mask  # noqa: E402

HERE = Path(__file__).resolve().parent


def r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/work/shared/data/mnist10k.npz")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--only-imagine", action="store_true", help="skip denoising/inpainting (keep their old numbers)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = ffa.data.load(args.data)
    pair = ffa.mirror(ffa.models.asym_resnet10(width=64))
    pair.configure("ffa", seed=args.seed)
    pair.load_state_dict(torch.load(args.weights, map_location="cpu"))
    x = torch.as_tensor(ds.x_test[: args.n])
    g = torch.Generator().manual_seed(0)
    out: dict = {"n": args.n, "max_steps": args.steps, "metrics": ffa.evaluate(pair, ds)}
    old_json = HERE / "results" / "gpu-h100-ffa-inference.json"
    if args.only_imagine and old_json.is_file():
        old = json.loads(old_json.read_text())
        out.update({k: old[k] for k in ("denoise_var0.1", "denoise_var0.5", "inpaint_bottom_half") if k in old})
    else:
        rows = {"clean": ds.x_test[:8]}
        for var in (0.1, 0.5):
            noisy = x + np.sqrt(var) * torch.randn(x.shape, generator=g)
            one = ffa.denoise(pair, noisy, iterations=1)
            den = ffa.denoise(pair, noisy, max_steps=args.steps)
            out[f"denoise_var{var}"] = {
                "r_noisy": r(noisy.numpy(), x.numpy()),
                "r_one_pass": r(one.images, x.numpy()),
                "r_sampler": r(den.images, x.numpy()),
                "steps": den.n_steps,
            }
            rows[f"noisy var {var}"] = noisy.numpy()[:8]
            rows[f"denoised var {var}"] = den.images[:8]
        mask = occlusion_mask(pair.input_shape)
        inp = ffa.inpaint(pair, x, mask, max_steps=args.steps)
        hole = mask[0, 0].numpy() == 0
        out["inpaint_bottom_half"] = {"r_hidden_half": r(inp.images[:, :, hole], x.numpy()[:, :, hole])}
        rows["occluded"] = (x * mask).numpy()[:8]
        rows["inpainted"] = inp.images[:8]
    from opgraph.ffa.inference import class_prototypes

    imag_rows, hit = {}, {}
    protos = class_prototypes(pair, ds)
    im = ffa.imagine(pair, list(range(10)), n=8, prototypes=protos, max_steps=args.steps, seed=0)
    with torch.no_grad():
        pred = pair.F(torch.as_tensor(im.images)).argmax(1).numpy()
    for k in range(10):
        hit[k] = float((pred[k * 8 : (k + 1) * 8] == k).mean())
        imag_rows[f"class {k}"] = im.images[k * 8 : (k + 1) * 8]
    out["imagine_fraction_classified_as_target"] = hit
    out["wall_s"] = time.perf_counter() - t0
    if not args.only_imagine:
        fig = figures.image_grid(rows, title="paper-size FFA: denoising and inpainting (K&S sampler, B(F(y)))")
        fig.savefig(HERE / "results" / "gpu-h100-ffa-inference.png", dpi=70)
    fig2 = figures.image_grid(imag_rows, title="paper-size FFA: imagination, one row per class")
    fig2.savefig(HERE / "results" / "gpu-h100-ffa-imagine.png", dpi=60)
    write_json(HERE / "results" / "gpu-h100-ffa-inference.json", out)
    print(dumps(out))


if __name__ == "__main__":
    main()
