"""Baselines for the case suite: a name-only trace diff (HTA TraceDiff style) and the plain profiler top-k.

Both use ``torch.profiler`` (CPU activity, no stacks: ``with_stack`` crashes intermittently on torch 2.13) and
aggregate self CPU time by op name. Neither can see dataflow, call lines or settings.
"""

from __future__ import annotations

from typing import Any

from opgraph.energy.recorder import normalize_inputs


def op_self_times(fn: Any, inputs: Any, reps: int = 5) -> dict[str, float]:
    """Self CPU time per call (seconds) of every aten op name over ``reps`` calls of ``fn(*inputs)``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    args, kwargs = normalize_inputs(inputs)
    fn(*args, **kwargs)
    acts = [ProfilerActivity.CPU]
    with profile(activities=acts) as prof:
        for _ in range(reps):
            fn(*args, **kwargs)
    out: dict[str, float] = {}
    for ev in prof.key_averages():
        if ev.key.startswith("aten::"):
            out[ev.key] = out.get(ev.key, 0.0) + ev.self_cpu_time_total / 1e6 / reps
    del torch
    return out


def name_only_diff(
    a: Any, b: Any, inputs: Any, inputs_b: Any, culprit: set[str], threshold: float = 1.10, min_share: float = 0.01
) -> dict[str, Any]:
    """Match ops by name only and rank by the extra self time of A.

    Returns:
        ``{"ranking": [(op, delta_s)], "flagged": [...], "top1": bool, "top3": bool}`` where a hit is a culprit
        op name ranked first / in the first three.
    """
    ta = op_self_times(a, inputs)
    tb = op_self_times(b, inputs if inputs_b is None else inputs_b)
    total = sum(ta.values()) or 1e-30
    ranking = sorted(((op, ta.get(op, 0.0) - tb.get(op, 0.0)) for op in set(ta) | set(tb)), key=lambda kv: -kv[1])
    flagged = [
        op
        for op, d in ranking
        if d > min_share * total and (tb.get(op, 0.0) == 0 or ta.get(op, 0.0) / tb[op] > threshold)
    ]
    names = [op for op, d in ranking if d > 0]
    return {
        "ranking": ranking[:5],
        "flagged": flagged,
        "top1": bool(names[:1]) and names[0] in culprit,
        "top3": any(op in culprit for op in names[:3]),
    }


def profiler_topk(a: Any, inputs: Any, culprit: set[str]) -> dict[str, Any]:
    """Rank A's ops by self time alone (what a user of the plain profiler sees first)."""
    ta = op_self_times(a, inputs)
    names = [op for op, _ in sorted(ta.items(), key=lambda kv: -kv[1])]
    return {
        "ranking": names[:5],
        "top1": bool(names) and names[0] in culprit,
        "top3": any(op in culprit for op in names[:3]),
    }
