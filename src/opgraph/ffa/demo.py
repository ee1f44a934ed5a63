"""Report section for ``opgraph demo``: FFA vs. BP vs. FA on scikit-learn digits (seconds on 2 cores)."""

from __future__ import annotations

import pathlib
import time
from typing import Any

from opgraph._base.jsonio import write_json


def report_section(work_dir: pathlib.Path, *, quick: bool = True) -> Any:
    """Run the FFA demo with one torch thread (robust on shared 2-core machines) and return its section.

    Args:
        work_dir: Folder for run folders and JSON.
        quick: A few seconds of training (well under a minute on 2 cores); ``False`` trains longer and adds the
            autoencoder controls.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _section(work_dir, quick=quick)
    finally:
        torch.set_num_threads(threads)


def _section(work_dir: pathlib.Path, *, quick: bool = True) -> Any:
    """Train the paper's MLP on scikit-learn digits with FFA, BP and FA, evaluate, and return a report section."""
    import torch

    from opgraph.ffa import data, figures, models
    from opgraph.ffa.analysis import occlusion_mask
    from opgraph.ffa.evaluation import robustness
    from opgraph.ffa.inference import denoise, imagine, inpaint
    from opgraph.ffa.mirroring import mirror
    from opgraph.ffa.training import train
    from opgraph.report import Figure, Section, Table

    t0 = time.perf_counter()
    work = pathlib.Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ds = data.load("digits")
    methods = ["ffa", "bp", "fa"] if quick else ["ffa", "bp", "fa", "kp", "sign", "ae-bp", "ae-fa"]
    epochs = 20 if quick else 100
    results, robs, pairs = {}, {}, {}
    for m in methods:
        torch.manual_seed(0)
        pair = mirror(models.mlp(64, hidden=(256, 256), n_classes=10))
        results[m] = train(pair, ds, method=m, epochs=epochs, seed=0, batch_size=64, run_dir=work / m)
        robs[m] = robustness(pair, ds, noise=[0.0, 0.1, 0.3, 0.5], iterations=3, fgsm_eps=[0.05, 0.1], n=None)
        pairs[m] = pair
    rows = []
    for m, r in results.items():
        f, rb = r.final, robs[m]
        rows.append(
            [
                m,
                round(f["test_acc"], 2),
                round(f["recon_corr"], 3),
                round(f["align_mean_deg"], 1),
                round(float(rb.noise_acc[2, 0]), 2),
                round(float(rb.noise_acc[2, 1]), 2),
                round(r.wall_s, 2),
            ]
        )
    p = pairs["ffa"]
    x = torch.as_tensor(ds.x_test[:64])
    gen = torch.Generator().manual_seed(0)
    noisy = x + 0.3 * torch.randn(x.shape, generator=gen)
    steps = 60 if quick else 200
    den = denoise(p, noisy, max_steps=steps)
    mask = occlusion_mask(p.input_shape, fraction=0.5)
    inp = inpaint(p, x, mask, max_steps=steps)
    from opgraph.ffa.inference import class_prototypes

    protos = class_prototypes(p, ds)
    shown = list(range(0, 10, 3 if quick else 1))
    imagined = imagine(p, shown, n=8, prototypes=protos, max_steps=steps)
    imag = {f"class {k}": imagined.images[i * 8 : (i + 1) * 8] for i, k in enumerate(shown)}
    with torch.no_grad():
        p.eval()
        rec = {m: pairs[m].reconstruct(x).numpy()[:8] for m in methods}
    figs = [
        Figure.from_matplotlib(
            figures.learning_curves(results),
            "curves",
            "Test accuracy, reconstruction correlation and F-vs-feedback angle per epoch.",
        ),
        Figure.from_matplotlib(
            figures.accuracy_vs_reconstruction(
                [
                    {"method": m, "test_acc": r.final["test_acc"], "recon_corr": r.final["recon_corr"]}
                    for m, r in results.items()
                ],
                paper=False,
            ),
            "scatter",
            "Accuracy vs. reconstruction (the paper's Fig. 2 axes): only FFA gets both.",
        ),
        Figure.from_matplotlib(
            figures.robustness_figure(robs),
            "robustness",
            "Accuracy on noisy test digits after 0-3 iterations of x <- B(F(x)).",
        ),
        Figure.from_matplotlib(
            figures.image_grid(
                {"input": ds.x_test[:8], **{f"B(F(x)) {m}": v for m, v in rec.items()}}, title="reconstructions"
            ),
            "reconstructions",
            "Only FFA's feedback network reconstructs the input.",
        ),
        Figure.from_matplotlib(
            figures.image_grid(
                {
                    "noisy": noisy.numpy()[:8],
                    "denoised": den.images[:8],
                    "occluded": (x * mask).numpy()[:8],
                    "inpainted": inp.images[:8],
                },
                title="FFA visual inference",
            ),
            "inference",
            "Denoising and inpainting with the Kadkhodaie-Simoncelli sampler, B(F(y)) as denoiser.",
        ),
        Figure.from_matplotlib(
            figures.image_grid(imag, title="imagination"),
            "imagine",
            "Class-conditioned samples from noise (latent pulled towards each class's mean latent; 8x8 digits).",
        ),
    ]
    numbers = {
        "rows": rows,
        "histories": {m: r.history for m, r in results.items()},
        "robustness": {m: rb.to_dict() for m, rb in robs.items()},
        "wall_s": time.perf_counter() - t0,
    }
    write_json(work / "ffa_demo.json", numbers)
    return Section(
        id="ffa",
        title="opgraph.ffa: Feedback-Feedforward Alignment",
        summary=(
            f"The paper's MLP (64-256-256-10 here) and its mirrored feedback network were trained for {epochs} "
            f"epochs on scikit-learn's 8x8 digits with FFA, back-propagation (BP) and feedback alignment (FA). "
            "In FFA each network's backward pass uses the other's weights, and the feedback network learns to "
            "reconstruct the clean image from the (detached) latent of a noisy one; BP's and FA's feedback "
            "networks are never trained: they hold a random initialisation (BP) or F's random feedback weights "
            "(FA), as in the authors' code.\n\n"
            + "; ".join(f"{r[0]}: {r[1]:.1f} % accuracy, reconstruction r = {r[2]:.2f}" for r in rows)
            + f". The section took {time.perf_counter() - t0:.1f} s."
        ),
        figures=figs,
        tables=[
            Table(
                [
                    "method",
                    "test_acc_pct",
                    "recon_corr",
                    "align_mean_deg",
                    "acc_noise0.3_itr0_pct",
                    "acc_noise0.3_itr1_pct",
                    "train_wall_s",
                ],
                rows,
                "Last-epoch metrics; accuracy on test digits with noise of variance 0.3 before and after "
                "one F->B iteration.",
            )
        ],
        data=numbers,
        notes=[
            "8x8 scikit-learn digits with an MLP, not the paper's 32x32 MNIST conv model: numbers are not "
            "comparable with the paper's; see docs/benchmarks/ffa.md for MNIST and Fashion-MNIST runs.",
            "The imagination sampler's class conditioning (pulling the latent towards the class's mean latent) is this package's choice; "
            "the authors' mechanism is not in their released code.",
        ],
    )
