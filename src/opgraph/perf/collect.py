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
