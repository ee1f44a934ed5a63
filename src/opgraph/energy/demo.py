"""Demo section for ``opgraph demo``: a few built-in cases diffed with the model backend."""

from __future__ import annotations

import pathlib

from opgraph.report import Figure, Section, Table

DEMO_CASES_QUICK = ("gelu-unfused", "repeat-kv-noop", "dtype-f64", "control-identical")


def report_section(work_dir: pathlib.Path, *, quick: bool = True) -> Section:
    """Diff some built-in cases (CPU, model backend: energy ESTIMATED) and return a report section."""
    import matplotlib.pyplot as plt
    import torch

    from opgraph.energy.cases import CASES
    from opgraph.energy.differ import diff

    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ids = DEMO_CASES_QUICK if quick else tuple(c for c in CASES if c != "tf32-off")
        rows = []
        figures = []
        data = {}
        for cid in ids:
            case = CASES[cid]
            a, b, inputs, inputs_b = case.build("cpu")
            rep = diff(a, b, inputs, "model", inputs_b=inputs_b, rounds=5, allow_mismatch=case.kind == "tradeoff")
            top = rep.findings[0] if rep.findings else None
            rows.append(
                [
                    cid,
                    case.kind,
                    case.category or "-",
                    len(rep.findings),
                    top.category if top else "-",
                    f"{top.ratio:.2f} [{top.ci[0]:.2f}, {top.ci[1]:.2f}]" if top else "-",
                    (top.callsites[0] if top and top.callsites else "-"),
                    (top.knob or "-") if top else "-",
                    f"{rep.timings['total_s']:.1f}",
                ]
            )
            data[cid] = rep.to_dict()
            if cid == ids[0]:
                fig = rep.figure()
                figures.append(
                    Figure.from_matplotlib(fig, f"energy-{cid}", caption=f"{cid}: per-region cost (estimated)")
                )
                plt.close(fig)
                rep.to_perfetto(work_dir / f"{cid}.trace.json")
                rep.to_folded(work_dir / f"{cid}.folded")
    finally:
        torch.set_num_threads(threads)
    table = Table(
        [
            "case",
            "kind",
            "expected",
            "findings",
            "top category",
            "top ratio [95% CI]",
            "top call site",
            "knob",
            "analysis (s)",
        ],
        rows,
        caption="Built-in cases (A = wasteful, B = efficient), backend 'model'",
    )
    return Section(
        id="energy",
        title="Differential energy debugging (Magneton)",
        summary=(
            "Two implementations of the same computation are recorded as aten-op graphs, matched by the values "
            "they compute, replayed region by region (A B interleaved) and compared; findings name the code line, "
            "the category and the setting."
        ),
        figures=figures,
        tables=[table],
        data=data,
        notes=[
            "Energy here is MODELLED (estimated): 4 W per busy core x CPU-seconds + 15 pJ per byte moved; "
            "this machine has no RAPL, no GPU and no hardware counters.",
            "Ratios come from paired, interleaved replay on a shared 2-core VM; absolute values are not "
            "representative.",
        ],
    )
