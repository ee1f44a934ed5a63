"""Run the built-in case suite and score the diagnoses (and two baselines) against the ground truth."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from opgraph.energy.cases import CASES, GPU_ONLY, Case
from opgraph.energy.matcher import FREE_OPS

log = logging.getLogger(__name__)


@dataclass
class CaseResult:
    """Outcome of one case under one backend.

    Attributes:
        id: Case id.
        kind: ``"waste"``, ``"control"`` or ``"tradeoff"``.
        backend: Backend used.
        n_findings: Findings reported.
        n_hits: Findings whose costly call sites include a ``# CULPRIT`` line.
        detected: At least one hit.
        top1: The first-ranked finding is a hit.
        top3: One of the first three is a hit.
        category: Category of the first hit (None if none).
        category_ok: It equals the expected category.
        knob: Knob of the first hit.
        knob_ok: It equals the expected knob (None when the case has no knob).
        false_flag: A control case got a finding.
        waste_called: A trade-off case got a finding with verdict ``"waste"``.
        top_ratio: Ratio of the first finding.
        analysis_s: Wall time of the diff (record + match + measure + diagnose).
        baselines: Scores of the name-only matcher and the profiler top-k.
    """

    id: str
    kind: str
    backend: str
    n_findings: int = 0
    n_hits: int = 0
    detected: bool = False
    top1: bool = False
    top3: bool = False
    category: str | None = None
    category_ok: bool = False
    knob: str | None = None
    knob_ok: bool | None = None
    false_flag: bool = False
    waste_called: bool = False
    top_ratio: float | None = None
    analysis_s: float = 0.0
    error: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    baselines: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def _hit(callsites: Iterable[str], lines: set[int], sites: Iterable[str] = ()) -> bool:
    """Whether a call site is a culprit.

    Culprits are the ``# CULPRIT`` lines of cases.py and ``sites`` (``"file.py:function"`` in a library's source).
    """
    library = {tuple(s.split(":", 1)) for s in sites}
    for site in callsites:
        head, _, func = site.removesuffix(" (backward)").partition(" in ")
        fname, _, line = head.rpartition(":")
        base = os.path.basename(fname)
        if base == "cases.py" and line.isdigit() and int(line) in lines:
            return True
        if (base, func) in library:
            return True
    return False


def _lib_source(f: Any, rep: Any) -> dict[str, Any]:
    """``lib_file``/``lib_line`` of a finding's first library line (its path and number; empty without one)."""
    from opgraph.energy.result import source_path

    if not f.lib_sites:
        return {"lib_file": "", "lib_line": 0}
    path, line = source_path(f.lib_sites[0], rep.run_a if f.costly_side == "a" else rep.run_b)
    return {"lib_file": path, "lib_line": line}


def culprit_ops(run: Any, lines: set[int], sites: Iterable[str] = ()) -> set[str]:
    """Aten op names recorded at the culprit lines of a run of ``cases.py`` (or at library ``sites``)."""
    library = {tuple(s.split(":", 1)) for s in sites}
    out = set()
    for n in run.graph.nodes:
        if n.op in FREE_OPS or n.op == "input":
            continue
        base = os.path.basename(n.meta.get("file", ""))
        lib = (os.path.basename(n.meta.get("lib_file", "")), n.meta.get("lib_func"))
        user_hit = (base == "cases.py" and n.meta.get("line") in lines) or (base, n.meta.get("func")) in library
        if user_hit or lib in library:
            out.add(n.op)
    return out


def evaluate_case(
    case: Case,
    backend: Any = "model",
    *,
    device: str = "cpu",
    rounds: int = 5,
    seed: int = 0,
    baselines: bool = True,
    max_rounds: int | None = None,
    keep_report: bool = False,
) -> CaseResult:
    """Diff one case and score it (see :class:`CaseResult`); ``backend`` is a name or a Backend."""
    from opgraph.energy.differ import diff

    res = CaseResult(case.id, case.kind, backend if isinstance(backend, str) else backend.name)
    a, b, inputs, inputs_b = case.build(device)
    t0 = time.perf_counter()
    try:
        rep = diff(
            a,
            b,
            inputs,
            backend,
            inputs_b=inputs_b,
            rounds=rounds,
            seed=seed,
            max_rounds=max_rounds or 3 * rounds,
            allow_mismatch=case.kind == "tradeoff",
            canonicalize=case.canonicalize,
        )
    except Exception as exc:  # noqa: BLE001  (a failing case is a result, not a crash of the suite)
        res.error = f"{type(exc).__name__}: {exc}"
        log.warning("case %s failed: %s", case.id, res.error)
        return res
    res.analysis_s = time.perf_counter() - t0
    if keep_report:
        res.report = rep.to_dict()
    lines = case.culprit_lines()
    hits = [_hit([*f.callsites, *f.lib_sites], lines, case.culprit_sites) for f in rep.findings]
    res.n_findings = len(rep.findings)
    res.n_hits = sum(hits)
    res.detected = any(hits)
    res.top1 = bool(hits and hits[0])
    res.top3 = any(hits[:3])
    res.findings = [
        {
            **_lib_source(f, rep),
            "category": f.category,
            "verdict": f.verdict,
            "ratio": f.ratio,
            "ci": list(f.ci),
            "side": f.costly_side,
            "callsites": f.callsites[:3],
            "lib_sites": f.lib_sites[:3],
            "knob": f.knob,
            "hit": h,
            "delta_cost": f.delta_cost,
        }
        for f, h in zip(rep.findings, hits)
    ]
    if rep.findings:
        res.top_ratio = rep.findings[0].ratio
    first = next((f for f, h in zip(rep.findings, hits) if h), None)
    if first is not None:
        res.category = first.category
        res.category_ok = first.category == case.category
        res.knob = first.knob
    if case.knob is not None:
        res.knob_ok = any(f.knob == case.knob for f, h in zip(rep.findings, hits) if h)
    res.false_flag = case.kind == "control" and bool(rep.findings)
    res.waste_called = case.kind == "tradeoff" and any(f.verdict == "waste" for f in rep.findings)
    if baselines:
        from opgraph.energy.baselines import name_only_diff, profiler_topk

        cops = culprit_ops(rep.run_a, lines, case.culprit_sites) if rep.run_a is not None else set()
        try:
            res.baselines = {
                "name_only": name_only_diff(a, b, inputs, inputs_b, cops),
                "profiler_topk": profiler_topk(a, inputs, cops),
            }
        except Exception as exc:  # noqa: BLE001
            res.baselines = {"error": str(exc)}
    return res


def case_ids(*, device: str = "cpu", gpu_subset: bool = False) -> list[str]:
    """Ids of the cases that run on ``device`` (the GPU subset when ``gpu_subset``)."""
    import importlib.util

    out = []
    for cid, c in CASES.items():
        if cid in GPU_ONLY and not device.startswith("cuda"):
            continue
        if c.requires is not None and importlib.util.find_spec(c.requires) is None:
            log.info("case %s skipped: it needs %s", cid, c.requires)
            continue
        if gpu_subset and not c.gpu:
            continue
        out.append(cid)
    return out


def run_suite(
    ids: Iterable[str] | None = None,
    backend: str = "model",
    *,
    device: str = "cpu",
    rounds: int = 5,
    seed: int = 0,
    baselines: bool = True,
    progress: bool = False,
) -> list[CaseResult]:
    """Evaluate several cases (default: every case that runs on ``device``)."""
    from tqdm import tqdm

    chosen = list(ids) if ids is not None else case_ids(device=device)
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        from opgraph.energy.errors import EnergyError

        raise EnergyError(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    return [
        evaluate_case(CASES[c], backend, device=device, rounds=rounds, seed=seed, baselines=baselines)
        for c in tqdm(chosen, desc=f"cases ({backend})", disable=not progress)
    ]


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    """Overall scores: detection precision/recall, top-1/top-3, category/knob accuracy, controls, trade-off."""
    waste = [r for r in results if r.kind == "waste" and r.error is None]
    controls = [r for r in results if r.kind == "control" and r.error is None]
    trade = [r for r in results if r.kind == "tradeoff" and r.error is None]
    knobbed = [r for r in waste if r.knob_ok is not None]
    flagged = sum(r.n_findings for r in waste + controls)
    tp = sum(r.n_hits for r in waste)

    def frac(n: int, d: int) -> float | None:
        return n / d if d else None

    out: dict[str, Any] = {
        "cases": len(results),
        "errors": [r.id for r in results if r.error],
        "precision": frac(tp, flagged),
        "recall": frac(sum(r.detected for r in waste), len(waste)),
        "top1": frac(sum(r.top1 for r in waste), len(waste)),
        "top3": frac(sum(r.top3 for r in waste), len(waste)),
        "category_acc": frac(sum(r.category_ok for r in waste), len(waste)),
        "knob_acc": frac(sum(bool(r.knob_ok) for r in knobbed), len(knobbed)),
        "control_false_flags": sum(r.false_flag for r in controls),
        "tradeoff_called_waste": sum(r.waste_called for r in trade),
        "mean_analysis_s": frac(sum(r.analysis_s for r in results), len(results)),
    }
    for name in ("name_only", "profiler_topk"):
        rows = [r.baselines.get(name) for r in waste if isinstance(r.baselines.get(name), dict)]
        if rows:
            out[f"{name}_top1"] = sum(bool(x.get("top1")) for x in rows) / len(rows)
            out[f"{name}_top3"] = sum(bool(x.get("top3")) for x in rows) / len(rows)
        crow = [r.baselines.get(name) for r in controls if isinstance(r.baselines.get(name), dict)]
        if name == "name_only" and crow:
            out["name_only_control_false_flags"] = sum(bool(x.get("flagged")) for x in crow)
    return out


def to_rows(results: list[CaseResult]) -> list[dict[str, Any]]:
    """Plain dicts (JSON)."""
    return [asdict(r) for r in results]
