"""Perfetto/Chrome traces and energy-weighted folded stacks for diffs and profiles.

Per-op energy inside a region is the region's measured (or estimated) cost split in proportion to each op's
recorded duration; the region totals are the measured ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opgraph.energy.matcher import FREE_OPS

if TYPE_CHECKING:
    from opgraph.energy.recorder import Run
    from opgraph.energy.result import DiffReport


def op_costs(report: DiffReport) -> tuple[dict[int, float], dict[int, float]]:
    """Per-node cost of A and B (backend unit), region costs split by recorded op duration."""
    out: list[dict[int, float]] = [{}, {}]
    for rr in report.regions:
        for k, (run, ids, cost) in enumerate(
            ((report.run_a, rr.region.a_nodes, rr.pair.a.cost), (report.run_b, rr.region.b_nodes, rr.pair.b.cost))
        ):
            if run is None:
                continue
            ops = [i for i in ids if run.graph.nodes[i].op not in FREE_OPS]
            durs = [max(run.graph.nodes[i].meta.get("dur_ns", 0), 1) for i in ops]
            tot = sum(durs) or 1
            for i, d in zip(ops, durs):
                out[k][i] = cost * d / tot
    return out[0], out[1]


def _stack(run: Run, nid: int, side: str) -> str:
    n = run.graph.nodes[nid]
    parts = [side]
    mp = n.meta.get("module_path", "")
    if mp:
        parts.extend(mp.split("."))
    site = n.meta.get("callsite", "")
    if site:
        parts.append(site.replace(";", ","))
    parts.append(n.op)
    return ";".join(p.replace(" ", "_") for p in parts)


def folded_stacks(report: DiffReport) -> tuple[dict[str, int], dict[str, int]]:
    """Folded stacks ``run;module;callsite;op`` of A and B, weighted in micro-units (uJ or us)."""
    ca, cb = op_costs(report)
    res: list[dict[str, int]] = [{}, {}]
    for k, (run, costs) in enumerate(((report.run_a, ca), (report.run_b, cb))):
        if run is None:
            continue
        for nid, cost in costs.items():
            # a common root so the two sides line up in a differential flame graph
            key = _stack(run, nid, "run")
            res[k][key] = res[k].get(key, 0) + max(int(round(cost * 1e6)), 0)
    return res[0], res[1]


def run_trace_events(
    run: Run,
    pid: int,
    label: str,
    costs: dict[int, float],
    unit: str,
    regions: list[tuple[int, tuple[int, ...]]] | None = None,
) -> list[dict[str, Any]]:
    """Trace events of one recorded run: ops as spans on thread 1, regions on thread 2, a counter track."""
    ev: list[dict[str, Any]] = [
        {"ph": "M", "pid": pid, "name": "process_name", "args": {"name": label}},
        {"ph": "M", "pid": pid, "tid": 1, "name": "thread_name", "args": {"name": "aten ops"}},
        {"ph": "M", "pid": pid, "tid": 2, "name": "thread_name", "args": {"name": "regions"}},
    ]
    counter = "power (W)" if unit == "J" else "busy (s/s)"
    for n in run.graph.nodes:
        if n.op in ("input", "getitem"):
            continue
        ts = n.meta.get("start_ns", 0) / 1e3
        dur = max(n.meta.get("dur_ns", 0) / 1e3, 0.001)
        cost = costs.get(n.id, 0.0)
        ev.append(
            {
                "ph": "X",
                "pid": pid,
                "tid": 1,
                "name": n.op,
                "ts": ts,
                "dur": dur,
                "cat": "aten",
                "args": {
                    "callsite": n.meta.get("callsite", ""),
                    "module": n.meta.get("module_path", ""),
                    "shape": n.meta.get("shape"),
                    "dtype": n.meta.get("dtype"),
                    f"cost_{unit}": cost,
                },
            }
        )
        if n.op not in FREE_OPS:
            ev.append({"ph": "C", "pid": pid, "name": counter, "ts": ts, "args": {"value": cost / (dur / 1e6)}})
            ev.append({"ph": "C", "pid": pid, "name": counter, "ts": ts + dur, "args": {"value": 0.0}})
    for rid, ids in regions or []:
        ops = [run.graph.nodes[i] for i in ids if run.graph.nodes[i].op not in ("input",)]
        if not ops:
            continue
        t0 = min(o.meta.get("start_ns", 0) for o in ops) / 1e3
        t1 = max(o.meta.get("start_ns", 0) + o.meta.get("dur_ns", 0) for o in ops) / 1e3
        ev.append(
            {
                "ph": "X",
                "pid": pid,
                "tid": 2,
                "name": f"region {rid}",
                "ts": t0,
                "dur": max(t1 - t0, 0.001),
                "cat": "region",
            }
        )
    return ev


def perfetto_trace(report: DiffReport) -> dict[str, Any]:
    """A Chrome trace JSON object with A (pid 1) and B (pid 2)."""
    ca, cb = op_costs(report)
    unit = report.backend_info.get("unit", "J")
    events: list[dict[str, Any]] = []
    if report.run_a is not None:
        events += run_trace_events(
            report.run_a,
            1,
            f"A: {report.run_a.name}",
            ca,
            unit,
            [(r.region.id, r.region.a_nodes) for r in report.regions],
        )
    if report.run_b is not None:
        events += run_trace_events(
            report.run_b,
            2,
            f"B: {report.run_b.name}",
            cb,
            unit,
            [(r.region.id, r.region.b_nodes) for r in report.regions],
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": {
            "backend": report.backend,
            "estimated": report.backend_info.get("estimated", False),
            "note": "op timestamps are from the recorded run; costs from paired replay",
        },
    }
