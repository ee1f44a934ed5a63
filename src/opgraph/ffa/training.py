"""Training F and B as the authors ran it, with checkpoints, resume, per-epoch JSON and parallel seeds.

Per mini-batch (method ``ffa``):

1. ``x_noisy = x + N(0, 0.1)``; cross-entropy of ``F(x_noisy)``; F's input gradients use B's weights; RMSprop step.
2. fresh noise; ``z = F.features(x_noisy2)`` (detached); MSE of ``B(z)`` against the **clean** ``x``; B's input
   gradients use F's weights; RMSprop step.

``bp``/``bp-copy``/``fa``/``sign`` train F only (B holds an untrained random initialisation, as in the authors'
BP runs / F's weights / F's random feedback / F's sign feedback, with F's BatchNorm parameters, so its
reconstruction is a by-product, as in the paper); ``kp`` (Kolen-Pollack) trains F with B's weights as feedback and
gives B's weights F's weight gradient, so that they converge through weight decay; ``ae-bp``/``ae-fa`` train F and
B end-to-end on reconstruction only and read the class from F's latent. Both optimisers are RMSprop (lr 1e-3,
weight decay 1e-5 for F, 1e-6 for B), batch 256, ``ReduceLROnPlateau`` (factor 0.1; patience 50 on test accuracy
for F, 40 on reconstruction correlation for B).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from opgraph._base.fileio import atomic_write, folder_lock
from opgraph._base.jsonio import dumps, read_json
from opgraph.ffa.errors import FFAError
from opgraph.ffa.evaluation import evaluate
from opgraph.ffa.mirroring import METHODS, Pair

__all__ = ["TrainConfig", "TrainResult", "load_run", "train", "train_many", "verify_run"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CONFIG = "config.json"
#: Written last at every save: the SHA-256 of each file of the run, so a loader can tell a whole run from a mix.
MANIFEST = "manifest.json"
#: The files a run folder's manifest vouches for.
RUN_FILES = (CONFIG, HISTORY, CHECKPOINT)
_MANIFEST_FORMAT = "opgraph.ffa.run"


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json`` in the run folder)."""

    method: str = "ffa"
    epochs: int = 20
    seed: int = 0
    batch_size: int = 256
    lr_f: float = 1e-3
    lr_b: float = 1e-3
    wd_f: float = 1e-5
    wd_b: float = 1e-6
    momentum: float = 0.0
    noise_var: float = 0.1
    patience_f: int = 50
    patience_b: int = 40
    eval_batch_size: int = 256
    model: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    data_source: str = ""
    n_train: int = 0
    n_test: int = 0
    # The keyword arguments of opgraph.ffa.data.load that gave the data (so `ffa eval` evaluates the same images).
    data_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes:
        history: One dict per epoch: ``epoch``, ``train_loss_f`` (cross-entropy), ``train_loss_b`` (MSE),
            ``test_acc`` (%), ``recon_corr`` (Pearson r), ``recon_mse``, ``align_first_deg``/``align_last_deg``/
            ``align_mean_deg`` (angle between F's weights and its feedback weights), ``lr_f``, ``lr_b``,
            ``epoch_s`` (wall seconds of the epoch incl. evaluation).
        config: The :class:`TrainConfig` as a dict.
        run_dir: Folder with ``config.json``, ``history.json`` and ``checkpoint.pt`` (None if not saved).
        pair: The trained pair (not saved in JSON).
        wall_s: Wall time of this call in seconds.
    """

    history: list[dict[str, Any]]
    config: dict[str, Any]
    run_dir: Path | None = None
    pair: Pair | None = None
    wall_s: float = 0.0

    @property
    def method(self) -> str:
        """Training method."""
        return str(self.config.get("method"))

    @property
    def final(self) -> dict[str, Any]:
        """Metrics of the last epoch."""
        return self.history[-1] if self.history else {}

    def best(self) -> dict[str, float]:
        """Maximum over epochs of test accuracy and of reconstruction correlation (the paper's statistic)."""
        if not self.history:
            return {}
        return {
            "test_acc": max(h["test_acc"] for h in self.history),
            "recon_corr": max(h["recon_corr"] for h in self.history),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (config, history, wall time)."""
        return {
            "config": self.config,
            "history": self.history,
            "wall_s": self.wall_s,
            "run_dir": str(self.run_dir) if self.run_dir else None,
        }

    def plot(self) -> Any:
        """Learning curves (accuracy, reconstruction correlation, alignment) as a matplotlib Figure."""
        from opgraph.ffa.figures import learning_curves

        return learning_curves({self.method: self})

    def __repr__(self) -> str:
        f = self.final
        if not f:
            return f"TrainResult(method={self.method!r}, no epochs)"
        return (
            f"TrainResult(method={self.method!r}, epochs={f['epoch']}, test_acc={f['test_acc']:.2f}%, "
            f"recon_corr={f['recon_corr']:.3f}, align_mean={f['align_mean_deg']:.1f}deg, "
            f"wall={self.wall_s:.1f}s)"
        )

    def _repr_html_(self) -> str:
        keys = ["epoch", "test_acc", "recon_corr", "align_mean_deg", "train_loss_f", "train_loss_b", "epoch_s"]
        head = "".join(f"<th>{k}</th>" for k in keys)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{h.get(k):.4g}</td>" if isinstance(h.get(k), float) else f"<td>{h.get(k)}</td>" for k in keys
            )
            + "</tr>"
            for h in self.history[-10:]
        )
        return f"<b>FFA run, method {self.method}</b><table><tr>{head}</tr>{body}</table>"


def _device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise FFAError(f"device={device!r} is not a torch device ({exc}); use cpu, cuda or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FFAError(f"device={device!r}: no CUDA device is available here; use --device cpu (or auto)")
    return dev


def _tensors(data: Any, dev: torch.device, shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    out = []
    for k in ("x_train", "y_train", "x_test", "y_test"):
        a = getattr(data, k)
        if k[0] == "x" and not np.isfinite(np.asarray(a)).all():
            raise FFAError(f"data.{k} contains NaN or inf values; clean the images before training")
        out.append(torch.as_tensor(a, dtype=torch.float32 if k[0] == "x" else torch.int64).to(dev))
    if tuple(out[0].shape[1:]) != shape:
        raise FFAError(
            f"data images have shape {tuple(out[0].shape[1:])} but the model expects {shape}; "
            f"load the data with image_size={shape[-1]} or build the model for this size"
        )
    return tuple(out)


def _load_checkpoint(path: Path, dev: torch.device) -> dict[str, Any]:
    """Read a run folder's checkpoint with ``weights_only=True`` (tensors and plain data; never code)."""
    from opgraph._base.torchio import load_checkpoint

    state = load_checkpoint(path, what="run checkpoint", map_location=dev, error=FFAError)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or "pair" not in state:
        raise FFAError(f"{path} is not an opgraph.ffa checkpoint; give a folder written by `opgraph ffa train --out`")
    return state


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save_run(rdir: Path, config: dict[str, Any], history: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Write config, history and checkpoint (each atomically), then the manifest of their SHA-256 LAST.

    A kill between two writes leaves files that do not match the manifest on disk (the previous save's), so
    :func:`verify_run` refuses the folder instead of loading a mix; once the manifest is renamed into place the
    folder is the new save, whole.
    """
    buf = io.BytesIO()
    torch.save(state, buf)
    blobs = {
        CONFIG: (dumps(config) + "\n").encode("utf-8"),
        HISTORY: (dumps(_clean(history)) + "\n").encode("utf-8"),
        CHECKPOINT: buf.getvalue(),
    }
    for name, blob in blobs.items():
        atomic_write(rdir / name, blob)
    manifest = {
        "format": _MANIFEST_FORMAT,
        "version": 1,
        "epoch": int(state["epoch"]),
        "files": {name: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for name, b in blobs.items()},
    }
    atomic_write(rdir / MANIFEST, dumps(manifest) + "\n")


def verify_run(run_dir: str | Path, *, allow_unverified: bool = False) -> dict[str, Any] | None:
    """Check that a run folder's files are one save, whole: each matches the SHA-256 in ``manifest.json``.

    Args:
        run_dir: A folder written by :func:`train`.
        allow_unverified: Accept a folder without ``manifest.json`` (written by opgraph before run manifests)
            with a warning instead of refusing it.

    Returns:
        The manifest, or None for an accepted folder without one.

    Raises:
        FFAError: one line naming the file that is missing or does not match, or the missing manifest.
    """
    rdir = Path(run_dir)
    mpath = rdir / MANIFEST
    if not mpath.is_file():
        msg = (
            f"{rdir} has no {MANIFEST} (written by opgraph before run manifests, or cut off before its first "
            "epoch was saved), so its files cannot be checked to belong to one run"
        )
        if allow_unverified:
            log.warning("%s; loading it anyway (allow_unverified)", msg)
            return None
        raise FFAError(f"{msg}; train it again, or pass allow_unverified=True (--allow-unverified) if you trust it")
    manifest = read_json(mpath, what="run manifest", error=FFAError)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != _MANIFEST_FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(files.get(n), dict) and isinstance(files[n].get("sha256"), str) for n in RUN_FILES)
    ):
        raise FFAError(f"{mpath} is not an opgraph.ffa run manifest; give a folder written by `opgraph ffa train`")
    for name in RUN_FILES:
        path = rdir / name
        if not path.is_file():
            raise FFAError(
                f"{rdir}: {name} is missing but {MANIFEST} lists it (the folder is incomplete); "
                "train the run again (--overwrite)"
            )
        if _sha256(path) != files[name]["sha256"]:
            raise FFAError(
                f"{rdir}: {name} does not match {MANIFEST} (SHA-256 differs: the folder mixes files of two runs, "
                "or a save was cut off); train the run again (--overwrite) or use another folder"
            )
    return manifest


def train(
    pair: Pair,
    data: Any,
    method: str = "ffa",
    epochs: int = 20,
    seed: int = 0,
    *,
    batch_size: int = 256,
    lr_f: float = 1e-3,
    lr_b: float = 1e-3,
    wd_f: float = 1e-5,
    wd_b: float = 1e-6,
    momentum: float = 0.0,
    noise_var: float = 0.1,
    patience_f: int = 50,
    patience_b: int = 40,
    eval_batch_size: int = 256,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str | None = "cpu",
    max_time_s: float | None = None,
    allow_unverified: bool = False,
) -> TrainResult:
    """Train ``pair`` with ``method`` and return the per-epoch history.

    Args:
        pair: From :func:`opgraph.ffa.mirror`; trained in place.
        data: A :class:`~opgraph.ffa.data.Dataset` whose image shape matches the model.
        method: ``ffa``, ``bp``, ``bp-copy``, ``fa``, ``kp`` (Kolen-Pollack), ``sign`` (sign-symmetry), ``ae-bp``,
            ``ae-fa``.
        epochs: Total number of epochs (with ``resume``, training continues up to this number).
        seed: Seeds the shuffling, the input noise and the fixed random feedback weights.
        batch_size: Mini-batch size (256 in the paper).
        lr_f: RMSprop learning rate of F.
        lr_b: RMSprop learning rate of B.
        wd_f: Weight decay of F.
        wd_b: Weight decay of B.
        momentum: RMSprop momentum (0 here; see docs/ffa.md).
        noise_var: Variance of the Gaussian input noise during training (0.1 in the paper).
        patience_f: ReduceLROnPlateau patience (epochs) of F, on test accuracy.
        patience_b: ReduceLROnPlateau patience of B, on reconstruction correlation.
        eval_batch_size: Batch size of the per-epoch evaluation.
        run_dir: If given: ``config.json``, ``history.json`` and ``checkpoint.pt`` are written there after every
            epoch (each atomically), then ``manifest.json`` with their SHA-256, last, so that a save cut off
            midway is refused by the loaders instead of loading as a mix. The folder is locked while training: a
            second concurrent writer raises :class:`~opgraph._base.fileio.ConcurrentWriteError`.
        resume: Continue from ``run_dir/checkpoint.pt`` if it exists (same method required; the folder must pass
            :func:`verify_run`).
        progress: Show a tqdm progress bar.
        device: ``cpu``, ``cuda``, or ``auto``/None (CUDA when available).
        max_time_s: Stop after the epoch during which this many wall seconds (of this call) have passed; the
            checkpoint allows resuming later.
        allow_unverified: With ``resume``, accept a run folder without ``manifest.json`` (older opgraph) with a
            warning.

    Returns:
        A :class:`TrainResult`.
    """
    from tqdm.auto import tqdm

    if method not in METHODS:
        raise FFAError(f"method={method!r} is unknown; use one of {', '.join(METHODS)}")
    if epochs < 0 or batch_size < 2:
        raise FFAError(f"need epochs >= 0 and batch_size >= 2 (got epochs={epochs}, batch_size={batch_size})")
    if epochs == 0 and not resume:
        raise FFAError("epochs=0 trains nothing; pass epochs >= 1 (--epochs)")
    if eval_batch_size < 1:
        raise FFAError(f"eval_batch_size={eval_batch_size} must be >= 1")
    for arg, value, lo, hi in (
        ("lr_f", lr_f, 0.0, math.inf),
        ("lr_b", lr_b, 0.0, math.inf),
        ("wd_f", wd_f, -1.0, math.inf),
        ("wd_b", wd_b, -1.0, math.inf),
        ("momentum", momentum, -1.0, 1.0),
        ("noise_var", noise_var, -1.0, math.inf),
    ):
        if not (isinstance(value, int | float) and math.isfinite(value) and lo < value < hi and value >= 0):
            raise FFAError(
                f"{arg}={value!r} must be a finite number {'> 0' if lo == 0 else '>= 0'}"
                f"{' and < 1' if hi == 1 else ''} (--{arg.replace('_', '-')})"
            )
    t_start = time.perf_counter()
    dev = _device(device)
    pair.to(dev)
    cfg = TrainConfig(
        method,
        epochs,
        seed,
        batch_size,
        lr_f,
        lr_b,
        wd_f,
        wd_b,
        momentum,
        noise_var,
        patience_f,
        patience_b,
        eval_batch_size,
        {
            "name": pair.F.name,
            "config": pair.F.config,
            "tie_bn": any(m is n for m in pair.F.modules() for n in pair.B.modules()),
        },
        getattr(data, "name", ""),
        getattr(data, "source", ""),
        len(data.y_train),
        len(data.y_test),
        dict(getattr(data, "load_args", {}) or {}),
    )
    pair.configure(method, seed=seed)
    objective = METHODS[method]["objective"]
    opt_f = torch.optim.RMSprop(pair.F.parameters(), lr=lr_f, momentum=momentum, weight_decay=wd_f)
    opt_b = torch.optim.RMSprop(
        pair.B.parameters(), lr=lr_b, momentum=momentum, weight_decay=wd_f if objective == "kp" else wd_b
    )
    sched_f = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_f, mode="max", factor=0.1, patience=patience_f)
    sched_b = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_b, mode="max", factor=0.1, patience=patience_b)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    history: list[dict[str, Any]] = []
    start_epoch = 0
    rdir = Path(run_dir) if run_dir is not None else None
    with contextlib.ExitStack() as stack:
        if rdir is not None:
            stack.enter_context(folder_lock(rdir))  # a second writer of this folder refuses (ConcurrentWriteError)
        if rdir is not None:
            ck = rdir / CHECKPOINT
            if resume:
                from opgraph._base.zipcheck import verify_zip

                verify_zip(ck, what="run checkpoint", error=FFAError)  # torch.load does not check CRC-32
            if resume and (ck.is_file() or (rdir / MANIFEST).is_file()):
                verify_run(rdir, allow_unverified=allow_unverified)
                state = _load_checkpoint(ck, dev)
                if state["config"]["method"] != method:
                    raise FFAError(
                        f"run_dir {rdir} holds a {state['config']['method']!r} run; cannot resume it "
                        f"as {method!r} (use another run_dir or resume=False)"
                    )
                pair.load_state_dict(state["pair"])
                opt_f.load_state_dict(state["opt_f"])
                opt_b.load_state_dict(state["opt_b"])
                sched_f.load_state_dict(state["sched_f"])
                sched_b.load_state_dict(state["sched_b"])
                gen.set_state(state["rng"].to("cpu") if dev.type == "cpu" else state["rng"])
                history = list(state["history"])
                start_epoch = int(state["epoch"])
                log.info("resuming %s at epoch %d", rdir, start_epoch)
        x_tr, y_tr, x_te, y_te = _tensors(data, dev, pair.input_shape)
        sd = math.sqrt(noise_var)
        n = len(x_tr)
        twins = pair.twin_layers()

        def noisy(x: torch.Tensor) -> torch.Tensor:
            if sd == 0:
                return x
            return x + sd * torch.randn(x.shape, generator=gen, device=dev, dtype=x.dtype)

        bar = tqdm(
            range(start_epoch, epochs), desc=f"ffa {method}", disable=not progress, initial=start_epoch, total=epochs
        )
        for epoch in bar:
            t0 = time.perf_counter()
            pair.train()
            perm = torch.randperm(n, generator=gen, device=dev)
            loss_f_sum, loss_b_sum, seen = 0.0, 0.0, 0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                if len(idx) < 2:
                    continue
                x, y = x_tr[idx], y_tr[idx]
                if objective == "ae":
                    rec = pair.B(pair.F.features(noisy(x)))
                    loss_b = F.mse_loss(rec, x)
                    opt_f.zero_grad(set_to_none=True)
                    opt_b.zero_grad(set_to_none=True)
                    loss_b.backward()
                    opt_f.step()
                    opt_b.step()
                    loss_b_sum += float(loss_b.detach()) * len(idx)
                else:
                    loss_f = F.cross_entropy(pair.F(noisy(x)), y)
                    opt_f.zero_grad(set_to_none=True)
                    loss_f.backward()
                    if objective == "kp":
                        opt_b.zero_grad(set_to_none=True)
                        for f_layer, b_layer in twins:
                            g = f_layer.weight.grad
                            b_layer.weight.grad = g.t().clone() if g.dim() == 2 else g.clone()
                        opt_b.step()
                    opt_f.step()
                    loss_f_sum += float(loss_f.detach()) * len(idx)
                    if objective == "ffa":
                        with torch.no_grad():
                            z = pair.F.features(noisy(x))
                        loss_b = F.mse_loss(pair.B(z), x)
                        opt_b.zero_grad(set_to_none=True)
                        loss_b.backward()
                        opt_b.step()
                        loss_b_sum += float(loss_b.detach()) * len(idx)
                seen += len(idx)
            if not math.isfinite(loss_f_sum + loss_b_sum):
                raise FFAError(
                    f"training diverged at epoch {epoch + 1} (loss is NaN or inf); lower lr_f / lr_b (--lr-f, --lr-b)"
                )
            metrics = evaluate(pair, (x_te, y_te), batch_size=eval_batch_size)
            angles = list(pair.alignment_deg().values())
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss_f": loss_f_sum / seen if objective != "ae" else float("nan"),
                "train_loss_b": loss_b_sum / seen if objective in ("ffa", "ae") else float("nan"),
                **metrics,
                "align_first_deg": angles[0],
                "align_last_deg": angles[-1],
                "align_mean_deg": float(np.mean(angles)),
                "lr_f": opt_f.param_groups[0]["lr"],
                "lr_b": opt_b.param_groups[0]["lr"],
            }
            sched_f.step(metrics["test_acc"])
            sched_b.step(metrics["recon_corr"])
            row["epoch_s"] = time.perf_counter() - t0
            history.append(row)
            bar.set_postfix(acc=f"{row['test_acc']:.1f}", r=f"{row['recon_corr']:.2f}")
            log.info("%s epoch %d: acc %.2f%% r %.3f", method, epoch + 1, row["test_acc"], row["recon_corr"])
            if rdir is not None:
                _save_run(
                    rdir,
                    asdict(cfg),
                    history,
                    {
                        "config": asdict(cfg),
                        "pair": pair.state_dict(),
                        "opt_f": opt_f.state_dict(),
                        "opt_b": opt_b.state_dict(),
                        "sched_f": sched_f.state_dict(),
                        "sched_b": sched_b.state_dict(),
                        "rng": gen.get_state(),
                        "history": history,
                        "epoch": epoch + 1,
                    },
                )
            if max_time_s is not None and time.perf_counter() - t_start > max_time_s:
                log.info("%s: stopping after epoch %d (max_time_s=%s)", method, epoch + 1, max_time_s)
                break
        bar.close()
        if not history:
            raise FFAError(
                f"no epoch was trained: the checkpoint in {rdir} is already at epoch {start_epoch}; raise epochs"
            )
        pair.sync_decoder()
        return TrainResult(_clean(history), asdict(cfg), rdir, pair, time.perf_counter() - t_start)


def _clean(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace NaN by None so that the JSON is standard."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in h.items()} for h in history]


def load_run(
    run_dir: str | Path, *, pair: Pair | None = None, device: str | None = "cpu", allow_unverified: bool = False
) -> TrainResult:
    """Load a run folder written by :func:`train`: config, history and (if possible) the trained pair.

    The folder must pass :func:`verify_run` (its files are one save, whole).

    Args:
        run_dir: The folder.
        pair: A pair of the same architecture to load the weights into; needed for custom encoders, built from
            the saved model config otherwise.
        device: Where to put the pair.
        allow_unverified: Accept a folder without ``manifest.json`` (older opgraph) with a warning.
    """
    from opgraph.ffa import models
    from opgraph.ffa.mirroring import mirror

    rdir = Path(run_dir)
    ck = rdir / CHECKPOINT
    if not ck.is_file():
        raise FFAError(f"{rdir} has no {CHECKPOINT}; give a folder written by `opgraph ffa train --out`")
    verify_run(rdir, allow_unverified=allow_unverified)
    from opgraph._base.zipcheck import verify_zip

    verify_zip(ck, what="run checkpoint", error=FFAError)  # torch.load does not check CRC-32
    dev = _device(device)
    state = _load_checkpoint(ck, dev)
    cfg = state["config"]
    if pair is None:
        spec = cfg["model"]
        if spec.get("name") in (None, "custom"):
            raise FFAError(f"{rdir} holds a custom encoder; pass pair= built the same way")
        pair = mirror(models.build(spec["name"], **spec["config"]), tie_bn=bool(spec.get("tie_bn")))
    pair.to(dev)
    pair.configure(cfg["method"], seed=cfg["seed"])
    pair.load_state_dict(state["pair"])
    pair.sync_decoder()
    return TrainResult(_clean(state["history"]), cfg, rdir, pair)


def _run_task(item: dict[str, Any], task_seed: int) -> dict[str, Any]:
    """Worker of :func:`train_many` (top level, so that it pickles): build, train, save, summarise."""
    from opgraph.ffa import data as ffa_data
    from opgraph.ffa import models
    from opgraph.ffa.mirroring import mirror

    if item.get("threads"):
        torch.set_num_threads(int(item["threads"]))
    seed = int(item["seed"])
    torch.manual_seed(seed)
    ds = ffa_data.load(item["data"], **item.get("data_kwargs", {}))
    pair = mirror(models.build(item["model"], **item["model_kwargs"]))
    res = train(
        pair,
        ds,
        method=item["method"],
        epochs=item["epochs"],
        seed=seed,
        run_dir=item.get("run_dir"),
        **item.get("train_kwargs", {}),
    )
    return {
        "method": item["method"],
        "seed": seed,
        "task_seed": task_seed,
        "history": res.history,
        "wall_s": res.wall_s,
        "run_dir": item.get("run_dir"),
    }


def train_many(
    model: str,
    model_kwargs: dict[str, Any],
    data: str,
    methods: Sequence[str],
    seeds: Sequence[int],
    epochs: int,
    *,
    out_dir: str | Path | None = None,
    executor: str = "serial",
    data_kwargs: dict[str, Any] | None = None,
    threads: int | None = 1,
    progress: bool = False,
    **train_kwargs: Any,
) -> list[TrainResult]:
    """Train every (method, seed) combination, in parallel through :func:`opgraph.parallel.map_tasks`.

    Each task builds the model with ``torch.manual_seed(seed)``, so a (method, seed) run gives the same numbers
    under every executor. Runs are saved to ``out_dir/<method>-s<seed>`` when ``out_dir`` is given.

    Args:
        model: Model name for :func:`opgraph.ffa.models.build`.
        model_kwargs: Its keyword arguments.
        data: Data source for :func:`opgraph.ffa.data.load` (a name or path; loaded in each task).
        methods: Training methods.
        seeds: Seeds.
        epochs: Epochs per run.
        out_dir: Parent folder of the run folders.
        executor: ``serial``, ``process``, ``dask`` or ``dask://host:port``.
        data_kwargs: Keyword arguments of :func:`~opgraph.ffa.data.load`.
        threads: torch threads per task.
        progress: Progress bar over tasks.
        **train_kwargs: Passed to :func:`train`.

    Returns:
        One :class:`TrainResult` per task (without the pair), in (method, seed) order.
    """
    from opgraph.parallel import map_tasks

    items = []
    for m in methods:
        for s in seeds:
            items.append(
                {
                    "model": model,
                    "model_kwargs": dict(model_kwargs),
                    "data": str(data),
                    "data_kwargs": dict(data_kwargs or {}),
                    "method": m,
                    "seed": int(s),
                    "epochs": epochs,
                    "run_dir": str(Path(out_dir) / f"{m}-s{s}") if out_dir else None,
                    "threads": threads,
                    "train_kwargs": train_kwargs,
                }
            )
    outs = map_tasks(_run_task, items, executor=executor, seed=0, progress=progress, desc="ffa runs")
    return [
        TrainResult(
            o["history"],
            {"method": o["method"], "seed": o["seed"]},
            Path(o["run_dir"]) if o["run_dir"] else None,
            None,
            o["wall_s"],
        )
        for o in outs
    ]
