"""Per-operator energy/time profile of one run (``opgraph.energy.profile``)."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph._base.fileio import atomic_write
from opgraph._base.jsonio import write_json
from opgraph.energy import settings as settings_mod
from opgraph.energy.backends import select
from opgraph.energy.matcher import FREE_OPS
from opgraph.energy.recorder import Run, record
from opgraph.energy.replay import RegionRunner, calibrate_reps


@dataclass
class Profile:
    """Per-op cost of one recorded run, each op replayed alone.

    Attributes:
        rows: One dict per data-moving op: ``node, op, callsite, lib_callsite, module_path, shape, dtype, cost,
            wall_s, cpu_s, energy_j`` (``lib_callsite``: the op's innermost library line, empty when the user's
            code called it directly; energy None with the time backend; estimated with the model backend).
        backend: Backend name.
        backend_info: Backend provenance.
        run: The recorded run.
    """

    rows: list[dict[str, Any]]
    backend: str
    backend_info: dict[str, Any]
    run: Run = field(repr=False)

    @property
    def total_cost(self) -> float:
        """Sum of the per-op costs (backend unit)."""
        return sum(r["cost"] for r in self.rows)

    def by(self, key: str = "op") -> list[tuple[str, float]]:
        """Costs summed by ``"op"``, ``"callsite"``, ``"lib_callsite"`` or ``"module_path"``, largest first."""
        acc: dict[str, float] = {}
        for r in self.rows:
            acc[str(r[key])] = acc.get(str(r[key]), 0.0) + r["cost"]
        return sorted(acc.items(), key=lambda kv: -kv[1])

    def __repr__(self) -> str:
        est = " ESTIMATED" if self.backend_info.get("estimated") else ""
        unit = self.backend_info.get("unit", "J")
        top = ", ".join(f"{k.replace('aten::', '')}={v:.3g}" for k, v in self.by("op")[:5])
        return f"Profile({self.run.name!r}, backend={self.backend}{est}, {len(self.rows)} ops, total {self.total_cost:.3g} {unit}: {top})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "format": "opgraph.energy.profile/1",
            "backend": self.backend,
            "backend_info": self.backend_info,
            "rows": self.rows,
            "total_cost": self.total_cost,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON."""
        return write_json(path, self.to_dict())

    def to_folded(self, path: str | os.PathLike[str]) -> Path:
        """Folded stacks ``module;callsite;op value`` (micro-units)."""
        acc: dict[str, int] = {}
        for r in self.rows:
            parts = [self.run.name, *[p for p in r["module_path"].split(".") if p], r["callsite"], r["op"]]
            key = ";".join(p.replace(" ", "_").replace(";", ",") for p in parts)
            acc[key] = acc.get(key, 0) + int(round(r["cost"] * 1e6))
        return atomic_write(path, "".join(f"{k} {v}\n" for k, v in sorted(acc.items())))

    def to_perfetto(self, path: str | os.PathLike[str]) -> Path:
        """Chrome/Perfetto trace of the recorded run with a cost counter track."""
        from opgraph.energy.exports import run_trace_events

        costs = {r["node"]: r["cost"] for r in self.rows}
        ev = run_trace_events(self.run, 1, self.run.name, costs, self.backend_info.get("unit", "J"))
        return write_json(path, {"traceEvents": ev, "displayTimeUnit": "ms"}, indent=None)

    def table(self, top: int = 20) -> Any:
        """A :class:`rich.table.Table` of the costliest ops."""
        from rich.table import Table

        est = " est." if self.backend_info.get("estimated") else ""
        t = Table(title=f"opgraph energy profile ({self.backend}{est})")
        for c in ("op", "call site", "module", "shape", f"cost ({self.backend_info.get('unit')}{est})", "share"):
            t.add_column(c)
        tot = self.total_cost or 1.0
        for r in sorted(self.rows, key=lambda r: -r["cost"])[:top]:
            t.add_row(
                r["op"],
                r["callsite"],
                r["module_path"] or "-",
                str(r["shape"]),
                f"{r['cost']:.3g}",
                f"{100 * r['cost'] / tot:.1f}%",
            )
        return t

    def figure(self) -> Any:
        """Bar chart of the costliest ops."""
        from opgraph.energy.plots import profile_bars

        est = ", estimated" if self.backend_info.get("estimated") else ""
        return profile_bars(self.rows, f"cost per call ({self.backend_info.get('unit')}{est})")


def profile(
    fn: Any, inputs: Any = (), backend: Any = "auto", *, window_s: float | None = None, rounds: int = 3
) -> Profile:
    """Record ``fn(*inputs)`` and measure every data-moving op alone (median of ``rounds`` windows).

    Args:
        fn: Callable, ``nn.Module`` or a recorded :class:`Run`.
        inputs: Its arguments.
        backend: Backend name or instance (see :func:`opgraph.energy.backends.select`).
        window_s: Window per op (default: the backend's).
        rounds: Windows per op.
    """
    run = fn if isinstance(fn, Run) else record(fn, inputs)
    device = "cuda" if any(str(n.meta.get("device", "")).startswith("cuda") for n in run.graph.nodes) else "cpu"
    be = select(backend, device=device)
    apply = {k: v for k, v in run.settings.items() if settings_mod.applicable(k)}
    target = window_s if window_s is not None else be.min_window_s
    rows = []
    with settings_mod.applied(apply):
        for n in run.graph.nodes:
            if n.op in FREE_OPS or n.op == "input":
                continue
            ids = [n.id] + [
                m.id
                for m in run.graph.nodes[n.id + 1 : n.id + 1 + int(n.meta.get("n_outputs", 0))]
                if m.op == "getitem"
            ]
            runner = RegionRunner(run, ids)
            runner()
            reps = calibrate_reps(runner, be, target)
            samples = [be.measure(runner, reps, bytes_per_call=runner.bytes_per_call) for _ in range(rounds)]
            med = sorted(samples, key=lambda s: s.cost)[len(samples) // 2]
            rows.append(
                {
                    "node": n.id,
                    "op": n.op,
                    "callsite": n.meta.get("callsite", ""),
                    "lib_callsite": n.meta.get("lib_callsite", ""),
                    "module_path": n.meta.get("module_path", ""),
                    "shape": n.meta.get("shape"),
                    "dtype": n.meta.get("dtype"),
                    "cost": med.cost,
                    "wall_s": statistics.median(s.wall_s for s in samples),
                    "cpu_s": med.cpu_s,
                    "energy_j": med.energy_j,
                }
            )
    return Profile(rows, be.name, be.describe(), run)
