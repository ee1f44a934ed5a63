"""Pick a fast layout for a user's PyTorch model with a trained cost model.

``tune_layout(module, example_inputs, model)``: enumerate candidate layout configs of the model's convolutions,
rank them all with the cost model (no measuring), measure only the top ``measure_frac`` of them plus the default
(all NCHW) with the measurement protocol, and return the fastest measured config and its speed-up over the default.
``apply`` it with :meth:`TuneResult.apply`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.perf.measure import MeasureSettings

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """Outcome of :func:`tune_layout`.

    Attributes:
        targets: Module path of each configurable convolution.
        best_choice: int[nc] the chosen format per convolution (0 NCHW, 1 channels-last).
        default_runtime_ns: Measured runtime of the default (all NCHW), ns.
        best_runtime_ns: Measured runtime of the chosen config, ns.
        n_candidates: Size of the ranked candidate set.
        n_measured: Configs measured (including the default).
        predicted_rank_of_best: Rank (0 = first) the model gave to the chosen config.
        measured: (candidate index, runtime_ns) of every measured config.
        seconds: Wall time of the whole tuning.
    """

    targets: list[str]
    best_choice: np.ndarray
    default_runtime_ns: int
    best_runtime_ns: int
    n_candidates: int
    n_measured: int
    predicted_rank_of_best: int
    measured: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def speedup(self) -> float:
        """Default runtime / chosen runtime."""
        return self.default_runtime_ns / max(self.best_runtime_ns, 1)

    def apply(self, module: Any, example_inputs: tuple[Any, ...]) -> Any:
        """Return a copy of ``module`` running the chosen layout (``LayoutModel.module``)."""
        from opgraph.perf.layout import apply_layout

        lm = apply_layout(module, example_inputs, self.targets)
        lm.set_config(self.best_choice)
        return lm.module

    def __repr__(self) -> str:
        nhwc = int(np.sum(self.best_choice))
        return (
            f"TuneResult({nhwc}/{len(self.best_choice)} convs channels-last, speed-up {self.speedup:.3f}x over all-NCHW "
            f"({self.default_runtime_ns / 1e6:.3f} -> {self.best_runtime_ns / 1e6:.3f} ms), measured "
            f"{self.n_measured}/{self.n_candidates} candidates in {self.seconds:.1f}s)"
        )


def tune_layout(
    module: Any,
    example_inputs: tuple[Any, ...],
    model: Any,
    *,
    n_candidates: int = 200,
    measure_frac: float = 0.1,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    name: str = "model",
) -> TuneResult:
    """Rank ``n_candidates`` layout configs with ``model``, measure the top ``measure_frac``, return the best.

    Args:
        module: ``nn.Module`` in eval mode.
        example_inputs: Its inputs.
        model: A layout :class:`~opgraph.perf.model.CostModel` (or any object with ``predict(record)``).
        n_candidates: Candidate configs sampled (row 0 = all NCHW).
        measure_frac: Fraction of the candidates to measure (at least 1, plus the default).
        settings: Measurement protocol knobs.
        seed: Seed of sampling and measuring.
        name: Graph name in logs.

    Returns:
        A :class:`TuneResult`.
    """
    from opgraph.perf.collect import layout_record
    from opgraph.perf.layout import decode_configs

    t0 = time.perf_counter()
    cand = layout_record(name, module, example_inputs, n_configs=n_candidates, measure=False, seed=seed)
    cost = np.asarray(model.predict(cand))
    order = np.argsort(cost, kind="stable")
    budget = max(2, int(np.floor(measure_frac * cand.n_configs)))  # the default + the model's top picks
    chosen = [0] + [int(i) for i in order if int(i) != 0][: budget - 1]
    choices = decode_configs(cand.config_matrix(chosen))
    rec = layout_record(name, module, example_inputs, choices=choices, settings=settings, seed=seed)
    rt = rec.config_runtime
    best = int(np.argmin(rt))
    from opgraph.graph import from_fx

    g = from_fx(module, example_inputs)
    targets = [g.node(int(i)).attrs["target"] for i in cand.node_config_ids]
    rank = {int(c): r for r, c in enumerate(order)}
    return TuneResult(
        targets=targets,
        best_choice=choices[best],
        default_runtime_ns=int(rt[chosen.index(0)]),
        best_runtime_ns=int(rt[best]),
        n_candidates=cand.n_configs,
        n_measured=len(chosen),
        predicted_rank_of_best=rank[chosen[best]],
        measured=[(c, int(r)) for c, r in zip(chosen, rt)],
        seconds=time.perf_counter() - t0,
    )


def simulate_tuning(model: Any, record: Any, measure_frac: float = 0.1) -> dict[str, float]:
    """Tuning replayed on a fully measured record: measure the model's top ``measure_frac`` (+ default).

    Returns:
        ``{"gap": chosen / best - 1, "speedup_vs_default": default / chosen, "measured_frac": ...}``.
    """
    rt = record.target_runtime()
    cost = np.asarray(model.predict(record))
    budget = max(2, int(np.floor(measure_frac * len(rt))))
    ref = int(record.measure_meta.get("reference_config", 0))
    picks = [int(i) for i in np.argsort(cost, kind="stable") if int(i) != ref][: budget - 1]
    top = {ref, *picks}
    chosen = min(rt[i] for i in top)
    return {
        "gap": float(chosen / rt.min() - 1),
        "speedup_vs_default": float(rt[ref] / chosen),
        "measured_frac": len(top) / len(rt),
    }
