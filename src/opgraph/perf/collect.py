"""Build TpuGraphs-format datasets on local hardware.

* :func:`layout_record` measures the layout space of any ``nn.Module`` (NCHW / channels-last per convolution).
* :func:`collect_layout` does that for many zoo models (or user models), one npz per graph, through
  :func:`opgraph.parallel.map_tasks`; graphs whose file already exists are skipped (resumable).
* :func:`collect_tile` (in :mod:`opgraph.perf.tile`) does the same for TVM tile schedules.

Measuring on a shared machine: keep one measuring worker per machine (``executor="serial"`` locally, one Dask worker
per host), otherwise workers disturb each other's timings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.parallel import map_tasks
from opgraph.perf.measure import MeasureSettings, measure_configs
from opgraph.perf.tpugraphs import FEATURE_VERSION, GraphRecord, load_or_build

log = logging.getLogger(__name__)


def graph_of(module: Any, example_inputs: tuple[Any, ...]) -> Any:
    """The opgraph :class:`~opgraph.graph.Graph` of a module (:func:`opgraph.graph.from_module`).

    Symbolic tracing (``from_fx``) where it works, the graphs of the seeded zoo; ``torch.export`` otherwise (real
    model code such as Hugging Face ``transformers`` models). Both give the same graph where both work.
    """
    from opgraph.graph import from_module

    return from_module(module, example_inputs)


def layout_record(
    name: str,
    module: Any,
    example_inputs: tuple[Any, ...],
    *,
    n_configs: int = 40,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    choices: np.ndarray | None = None,
    measure: bool = True,
    graph: Any = None,
) -> GraphRecord:
    """Measure ``n_configs`` layout configurations of a module and return them as a TpuGraphs layout record.

    Args:
        name: Graph name.
        module: ``nn.Module`` (eval mode).
        example_inputs: Its inputs.
        n_configs: Number of sampled configs (row 0 = all NCHW, the default and reference).
        settings: Measurement protocol knobs.
        seed: Seed of config sampling and round shuffles.
        choices: Explicit configs int[c, nc] (0 NCHW / 1 NHWC) instead of sampling.
        measure: False: only the graph and configs (``config_runtime`` None), e.g. to rank before measuring.
        graph: The module's graph if already captured (:func:`graph_of`).

    Returns:
        The record, with per-round runtimes, std and ``measure_meta``.
    """
    from opgraph.perf.errors import PerfError
    from opgraph.perf.features import node_features
    from opgraph.perf.layout import configurable_nodes, encode_configs, sample_configs, wrap_layout

    t0 = time.perf_counter()
    graph = graph if graph is not None else graph_of(module, example_inputs)
    feat, opcode, edges = node_features(graph)
    cfg_nodes = configurable_nodes(graph)
    if not cfg_nodes:
        raise PerfError(f"{name}: the model has no Conv2d/ConvTranspose2d module calls, so no layout to configure")
    targets = [graph.node(i).attrs["target"] for i in cfg_nodes]
    rng = np.random.default_rng(seed)
    if choices is None:
        # nodes that share one module (called twice) must share a choice: sample per distinct target
        uniq = list(dict.fromkeys(targets))
        per_target = sample_configs(len(uniq), n_configs, rng)
        col = [uniq.index(t) for t in targets]
        choices = per_target[:, col]
    choices = np.asarray(choices, dtype=np.int64)
    runtime = rounds = std = norm = None
    meta: dict[str, Any] = {"feature_version": FEATURE_VERSION, "space": "layout", "graph": name}
    meta["importer"] = str(graph.meta.get("source", ""))
    if measure:
        lm = wrap_layout(module, example_inputs, targets)
        if settings is not None and settings.timer == "cuda":  # the graph was traced on CPU; run on the GPU
            lm.module.to("cuda")
            lm.example_inputs = tuple(x.to("cuda") for x in lm.example_inputs)
        uniq_targets = lm.targets

        def prepare(i: int) -> Any:
            per_t = dict(zip(targets, choices[i]))
            lm.set_config([per_t[t] for t in uniq_targets])
            return lm.run

        m = measure_configs(len(choices), prepare, reference=0, settings=settings, seed=seed)
        runtime, rounds, std, norm = m.runtime_ns, m.rounds_ns, m.std_ns, m.normalizer_ns
        meta.update(m.meta)
        meta["failed_configs"] = np.flatnonzero(m.failed).tolist()
    meta["collect_s"] = time.perf_counter() - t0
    return GraphRecord(
        name=name,
        kind="layout",
        node_feat=feat,
        node_opcode=opcode,
        edge_index=edges,
        config_runtime=runtime,
        config_runtime_normalizers=norm,
        node_config_ids=np.asarray(cfg_nodes, dtype=np.int64),
        node_config_feat=encode_configs(choices),
        node_splits=np.zeros(1, dtype=np.int64),
        config_runtime_std=std,
        config_runtime_rounds=rounds,
        measure_meta=meta,
    )


@dataclass(frozen=True)
class _LayoutTask:
    spec: Any  # ZooSpec
    path: str
    n_configs: int
    settings: MeasureSettings


def _layout_task(task: _LayoutTask, seed: int) -> dict[str, Any]:
    def build() -> GraphRecord:
        module, example = task.spec.build()
        rec = layout_record(
            task.spec.name, module, example, n_configs=task.n_configs, settings=task.settings, seed=seed
        )
        rec.measure_meta["zoo"] = {"family": task.spec.family, "seed": task.spec.seed, "scale": task.spec.scale}
        return rec

    return load_or_build(task.path, build)


def collect_layout(
    specs: list[Any],
    out_dir: str | Path,
    *,
    n_configs: int = 40,
    settings: MeasureSettings | None = None,
    executor: Any = "serial",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure the layout space of each zoo model and write ``out_dir/<name>.npz`` (skipping existing files).

    Args:
        specs: :class:`opgraph.perf.zoo.ZooSpec` list (``zoo.generate(n, seed)``).
        out_dir: Output directory.
        n_configs: Configs per graph.
        settings: Protocol knobs.
        executor: ``opgraph.parallel`` executor spec; use one measuring worker per machine.
        seed: Run seed (each graph gets ``seed_for(seed, i)``).
        progress: Show a progress bar with ETA.

    Returns:
        One dict per graph: name, path, skipped, meta.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = settings or MeasureSettings()
    tasks = [_LayoutTask(sp, str(out / f"{sp.name}.npz"), n_configs, s) for sp in specs]
    return map_tasks(_layout_task, tasks, executor=executor, seed=seed, progress=progress, desc="layout graphs")


def split_names(names: list[str], holdout: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Hold out whole graphs: return ``(train, test)`` name lists (at least one graph in each when possible)."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(sorted(names)))
    k = max(1, int(round(holdout * len(order)))) if len(order) > 1 else 0
    return sorted(order[k:]), sorted(order[:k])


# -- the real-zoo collection job --------------------------------------------------------------------------------------

#: Input-size scales and batch sizes of the layout graphs of the full real collection (5 CNN families x 4 sizes x 6
#: scales x 2 batches = 240 graphs).
REAL_LAYOUT_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
REAL_LAYOUT_BATCHES = (1, 2)
#: Presets of :func:`collect_real`: ``ci`` is two tiny graphs and the kernels of two tiny models.
REAL_PRESETS = ("full", "ci")
KERNELS_FILE = "kernels.json"


def real_layout_specs(preset: str = "full", seed: int = 0) -> list[Any]:
    """The layout graphs of a real collection, in measuring order.

    ``full``: the 5 convolutional families x 4 sizes x :data:`REAL_LAYOUT_SCALES` x :data:`REAL_LAYOUT_BATCHES`
    (240 graphs, 22 to about 450 nodes). The 20 family/size pairs at scale 1, batch 1 come first (so that an
    interrupted job has seen every architecture, and its time per graph can be extrapolated), then the rest from
    the cheapest (smallest size, fewest input pixels) up. ``ci``: ResNet and ConvNeXt, tiny.

    Args:
        preset: One of :data:`REAL_PRESETS`.
        seed: Seed of weights and inputs.

    Returns:
        :class:`~opgraph.perf.zoo.RealSpec` list with distinct names.
    """
    from opgraph.perf import zoo
    from opgraph.perf.errors import PerfError

    if preset == "ci":
        return zoo.real_specs(("resnet", "convnext"), ("tiny",), seed=seed)
    if preset != "full":
        raise PerfError(f"preset {preset!r}: choose one of {REAL_PRESETS}")
    specs = zoo.real_specs(
        zoo.REAL_CNN_FAMILIES, zoo.REAL_SIZES, scales=REAL_LAYOUT_SCALES, batches=REAL_LAYOUT_BATCHES, seed=seed
    )
    first = [s for s in specs if s.scale == 1.0 and s.batch == 1]
    rest = [s for s in specs if not (s.scale == 1.0 and s.batch == 1)]
    size_rank = {s: i for i, s in enumerate(zoo.REAL_SIZES)}
    first.sort(key=lambda s: size_rank[s.size])
    rest.sort(key=lambda s: (size_rank[s.size], s.input_size**2 * s.batch, s.family))
    return first + rest


def _kernel_to_dict(spec: Any, sources: list[str]) -> dict[str, Any]:
    return {
        "op": spec.op,
        "dims": list(spec.dims),
        "epilogue": spec.epilogue,
        "stride": spec.stride,
        "groups": spec.groups,
        "sources": sources,
    }


def real_tile_kernels(
    out_dir: str | Path, preset: str = "full", *, seed: int = 0, progress: bool = True
) -> list[tuple[Any, list[str]]]:
    """The distinct TVM-ready kernels of the real zoo's models, cached in ``out_dir/kernels.json``.

    ``full`` captures every family at every size (36 models, about 560 kernels; a few minutes), ``ci`` two tiny
    models. The list is written once (atomically) and read back on resume, so a resumed job measures the same
    kernels. Order: 20 kernels spread evenly over the FLOP range first (for the time extrapolation), then the rest
    from the cheapest up.

    Args:
        out_dir: Collection root.
        preset: One of :data:`REAL_PRESETS`.
        seed: Seed of the models' weights.
        progress: Progress bar while capturing.

    Returns:
        ``(KernelSpec, sources)`` pairs; sources are ``model:module_path`` strings.
    """
    from opgraph._base.jsonio import read_json, write_json
    from opgraph.perf import zoo
    from opgraph.perf.errors import PerfError
    from opgraph.perf.kernels import model_kernels
    from opgraph.perf.tile import KernelSpec

    path = Path(out_dir) / KERNELS_FILE
    if path.exists():
        data = read_json(path, what="kernel list", error=PerfError)
        if not isinstance(data, dict) or data.get("preset") != preset or not isinstance(data.get("kernels"), list):
            raise PerfError(f"{path}: not a kernel list of preset {preset!r}; use another --out or delete the file")
        return [
            (
                KernelSpec(
                    k["op"], tuple(int(d) for d in k["dims"]), k["epilogue"], int(k["stride"]), int(k["groups"])
                ),
                list(k.get("sources", [])),
            )
            for k in data["kernels"]
        ]
    if preset == "ci":
        specs = zoo.real_specs(("resnet", "gpt2"), ("tiny",), seed=seed)
    elif preset == "full":
        specs = zoo.real_specs(zoo.REAL_FAMILIES, zoo.REAL_SIZES, seed=seed)
    else:
        raise PerfError(f"preset {preset!r}: choose one of {REAL_PRESETS}")
    found: dict[str, tuple[Any, list[str]]] = {}
    for m in model_kernels(specs, progress=progress):
        for k in m.kernels:
            spec = k.kernel_spec()
            if spec is None:
                continue
            if spec.name not in found:
                found[spec.name] = (spec, [])
            found[spec.name][1].extend(s for s in k.sources if len(found[spec.name][1]) < 8)
    pairs = sorted(found.values(), key=lambda p: (p[0].flops(), p[0].name))
    if len(pairs) > 20:  # a spread-out probe first: every family of sizes gets timed early
        probe = sorted({int(round(i * (len(pairs) - 1) / 19)) for i in range(20)})
        pairs = [pairs[i] for i in probe] + [p for i, p in enumerate(pairs) if i not in set(probe)]
    write_json(path, {"preset": preset, "seed": seed, "kernels": [_kernel_to_dict(s, src) for s, src in pairs]})
    return pairs


@dataclass(frozen=True)
class _GuardedTask:
    task: Any  # _LayoutTask or tile._TileTask
    deadline_unix: float | None


def _guarded_task(g: _GuardedTask, seed: int) -> dict[str, Any]:
    """Run one collection task; a failure or a passed deadline is reported in the result, not raised."""
    from opgraph.perf.tile import _tile_task

    path = Path(g.task.path)
    name = path.stem
    if path.exists():  # resume: kept without loading (or timing) anything heavy
        return _run_task(g.task, seed, _tile_task)
    if g.deadline_unix is not None and time.time() > g.deadline_unix:
        return {"name": name, "path": str(path), "skipped": False, "status": "deadline", "meta": {}}
    try:
        return _run_task(g.task, seed, _tile_task)
    except Exception as exc:  # noqa: BLE001 - one graph that fails must not stop a job of hundreds
        log.warning("%s failed: %s: %s", name, type(exc).__name__, exc)
        return {"name": name, "path": str(path), "skipped": False, "status": "failed", "error": str(exc)[:300]}


def _run_task(task: Any, seed: int, tile_task: Any) -> dict[str, Any]:
    import gc

    res = _layout_task(task, seed) if isinstance(task, _LayoutTask) else tile_task(task, seed)
    res["status"] = "kept" if res["skipped"] else "measured"
    gc.collect()
    return res


def collect_real(
    out_dir: str | Path,
    *,
    preset: str = "full",
    spaces: tuple[str, ...] = ("layout", "tile"),
    layout_configs: int = 8,
    tile_configs: int = 8,
    settings: MeasureSettings | None = None,
    executor: Any = "serial",
    seed: int = 0,
    deadline_unix: float | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The resumable real-zoo collection job: layout graphs of real CNNs and tile kernels extracted from real models.

    Files go to the official tree under ``out_dir``: ``layout/real/random/train/<graph>.npz`` and
    ``tile/real/train/<kernel>.npz`` (plus ``kernels.json``, the kernel list). Every file is written atomically
    (a killed job leaves no half file) and a file that exists is kept, so rerunning the same command resumes.
    Tasks spread over an :mod:`opgraph.parallel` executor (``"serial"``, ``"process"``, ``"dask://host:port"``);
    measure with one worker per machine (``dask worker --nworkers 1 --nthreads 1`` on each host) or the
    timings of concurrent workers disturb each other. A graph that fails is reported and retried by the next run;
    after ``deadline_unix`` no new graph is started (status ``deadline``).

    Args:
        out_dir: Collection root.
        preset: ``full`` (:func:`real_layout_specs`, :func:`real_tile_kernels`) or ``ci`` (a tiny subset).
        spaces: ``layout`` and/or ``tile``.
        layout_configs: Configs per layout graph (row 0 = all NCHW).
        tile_configs: Tile configs per kernel (row 0 = TVM's default schedule).
        settings: Measurement protocol (rounds >= 2 records the noise ceiling, the tau between rounds).
        executor: ``opgraph.parallel`` executor spec or instance.
        seed: Run seed.
        deadline_unix: Wall-clock time (``time.time()``) after which tasks not yet started are skipped.
        limit: Only the first ``limit`` graphs of each space (tests, quick runs).
        shard: ``(i, n)``: only every ``n``-th graph starting at the ``i``-th (0-based) of each space's list, so
            ``n`` jobs without a shared scheduler (one per machine, each on its own share of a common folder)
            split the work; a graph another job has already written is kept.
        progress: Progress bars.

    Returns:
        ``{"layout": [...], "tile": [...]}``, one dict per graph: name, path, status (measured, kept, failed,
        deadline) and the file's ``meta``.
    """
    from opgraph.perf.errors import PerfError
    from opgraph.perf.tile import _TileTask
    from opgraph.perf.tpugraphs import collection_dir

    bad = [s for s in spaces if s not in ("layout", "tile")]
    if bad or not spaces:
        raise PerfError(f"spaces {list(spaces)}: choose among 'layout' and 'tile'")
    if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
        raise PerfError(f"shard {shard}: use (i, n) with 0 <= i < n")
    i0, step = shard if shard is not None else (0, 1)
    root = Path(out_dir)
    s = settings or MeasureSettings(rounds=2, reps=1, warmup=1)
    out: dict[str, list[dict[str, Any]]] = {}
    if "layout" in spaces:
        d = collection_dir(root, "layout", "real", "random", "train")
        d.mkdir(parents=True, exist_ok=True)
        specs = real_layout_specs(preset, seed)[:limit][i0::step]
        tasks = [
            _GuardedTask(_LayoutTask(sp, str(d / f"{sp.name}.npz"), layout_configs, s), deadline_unix) for sp in specs
        ]
        out["layout"] = map_tasks(
            _guarded_task, tasks, executor=executor, seed=seed, progress=progress, desc="layout graphs"
        )
    if "tile" in spaces:
        from opgraph.perf.tile import require_tvm

        require_tvm()
        d = collection_dir(root, "tile", "real", split="train")
        d.mkdir(parents=True, exist_ok=True)
        kernels = real_tile_kernels(root, preset, seed=seed, progress=progress)[:limit][i0::step]
        tasks = [
            _GuardedTask(_TileTask(k, str(d / f"{k.name}.npz"), tile_configs, s), deadline_unix) for k, _ in kernels
        ]
        out["tile"] = map_tasks(
            _guarded_task, tasks, executor=executor, seed=seed + 1, progress=progress, desc="tile kernels"
        )
    return out
