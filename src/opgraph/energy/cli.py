"""``opgraph energy ...``: diff two implementations, profile one, run the built-in case suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from opgraph._base.cli_options import json_option
from opgraph._base.jsonio import write_json
from opgraph.energy.errors import EnergyError

BACKEND_CHOICE = click.Choice(["auto", "time", "model", "rapl", "nvml"])


def _load_maker(spec: str) -> tuple[Any, Any]:
    """``file.py:make`` -> ``make()`` which returns ``(callable, inputs)``."""
    from opgraph._base.cli_options import load_callable

    path, sep, name = spec.rpartition(":")
    if not sep or not path:
        raise click.UsageError(f"{spec!r}: expected 'file.py:make' where make() returns (callable, inputs)")
    make = load_callable(path, name)
    out = make()
    if not isinstance(out, tuple) or len(out) != 2 or not callable(out[0]):
        raise EnergyError(f"{spec}: {name}() must return (callable, inputs), got {type(out).__name__}")
    return out


def _console() -> Any:
    import sys

    from rich.console import Console

    # piped output (files, CI logs) gets wide tables instead of truncated cells
    return Console() if sys.stdout.isatty() else Console(width=200)


@click.group(name="energy")
def group() -> None:
    """Differential energy debugging (Magneton): diff two implementations operator by operator."""


@group.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True)
@click.option("--rounds", type=int, default=7, show_default=True, help="Interleaved rounds per region pair.")
@click.option("--threshold", type=float, default=None, help="Ratio threshold (default: 1.10, A-vs-A calibrated).")
@click.option("--allow-mismatch", is_flag=True, help="Compare even when the outputs differ.")
@click.option(
    "--canonicalize",
    type=click.Choice(["flatten", "sort"]),
    default=None,
    help="Compare outputs flattened, or sorted (order-free), instead of position by position as they are.",
)
@json_option(help="Write the report as JSON.")
@click.option("--html", "html_dir", type=click.Path(file_okay=False), help="Write an HTML page into this directory.")
@click.option("--perfetto", "trace_path", type=click.Path(dir_okay=False), help="Write a Perfetto/Chrome trace.")
@click.option("--folded", "folded_path", type=click.Path(dir_okay=False), help="Write folded stacks.")
@click.option("--regions", "show_regions", is_flag=True, help="Also print every region.")
def diff_cmd(
    a: str,
    b: str,
    backend: str,
    rounds: int,
    threshold: float | None,
    allow_mismatch: bool,
    canonicalize: str | None,
    json_path: str | None,
    html_dir: str | None,
    trace_path: str | None,
    folded_path: str | None,
    show_regions: bool,
) -> None:
    """Compare A and B, each given as FILE.py:MAKE where MAKE() returns (callable, inputs)."""
    from opgraph.energy.differ import diff

    fa, inputs = _load_maker(a)
    fb, inputs_b = _load_maker(b)
    rep = diff(
        fa,
        fb,
        inputs,
        backend,
        inputs_b=inputs_b,
        rounds=rounds,
        threshold=threshold,
        allow_mismatch=allow_mismatch,
        canonicalize=canonicalize,
    )
    con = _console()
    if show_regions or not rep.findings:
        con.print(rep.region_table())
    con.print(rep.table())
    con.print(f"whole run A/B: {rep.total.ratio:.2f}x [{rep.total.ci[0]:.2f}, {rep.total.ci[1]:.2f}]")
    for note in rep.notes:
        con.print(f"[yellow]note:[/] {note}")
    if json_path:
        con.print(f"JSON: {rep.to_json(json_path)}")
    if html_dir:
        con.print(f"HTML: {rep.to_html(html_dir)}")
    if trace_path:
        con.print(f"trace: {rep.to_perfetto(trace_path)}")
    if folded_path:
        con.print(f"folded stacks: {rep.to_folded(folded_path)}")


@group.command("profile")
@click.argument("target")
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True)
@click.option("--top", type=int, default=20, show_default=True)
@json_option()
@click.option("--perfetto", "trace_path", type=click.Path(dir_okay=False))
@click.option("--folded", "folded_path", type=click.Path(dir_okay=False))
def profile_cmd(
    target: str, backend: str, top: int, json_path: str | None, trace_path: str | None, folded_path: str | None
) -> None:
    """Per-operator energy/time profile of TARGET (FILE.py:MAKE returning (callable, inputs))."""
    from opgraph.energy.profiler import profile

    fn, inputs = _load_maker(target)
    prof = profile(fn, inputs, backend)
    con = _console()
    con.print(prof.table(top))
    if prof.backend_info.get("estimated"):
        con.print(
            "[yellow]note:[/] energy is MODELLED (estimated), not measured: " + str(prof.backend_info.get("formula"))
        )
    if prof.backend == "time":
        con.print("[yellow]note:[/] time-only backend: no energy")
    if json_path:
        con.print(f"JSON: {prof.to_json(json_path)}")
    if trace_path:
        con.print(f"trace: {prof.to_perfetto(trace_path)}")
    if folded_path:
        con.print(f"folded stacks: {prof.to_folded(folded_path)}")


@group.command("cases")
@click.option(
    "--backend",
    type=click.Choice(["time", "model", "auto", "nvml", "rapl", "both"]),
    default="both",
    show_default=True,
    help="'both' runs time and model side by side.",
)
@click.option("--case", "ids", multiple=True, help="Run only these case ids (repeatable).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--no-baselines", is_flag=True, help="Skip the name-only and profiler baselines.")
@json_option()
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
def cases_cmd(
    backend: str,
    ids: tuple[str, ...],
    device: str,
    rounds: int,
    no_baselines: bool,
    json_path: str | None,
    list_only: bool,
) -> None:
    """Run the built-in case suite and print per-case outcomes and overall scores."""
    from rich.table import Table

    from opgraph.energy.cases import CASES
    from opgraph.energy.suite import case_ids, run_suite, summarize, to_rows

    con = _console()
    if list_only:
        t = Table(title="opgraph.energy.cases")
        for col in ("id", "kind", "category", "knob", "modelled on", "description"):
            t.add_column(col)
        for c in CASES.values():
            t.add_row(c.id, c.kind, c.category or "-", c.knob or "-", c.modelled_on, c.description)
        con.print(t)
        return
    chosen = list(ids) or case_ids(device=device)
    backends = ["time", "model"] if backend == "both" else [backend]
    out: dict[str, Any] = {}
    for be in backends:
        res = run_suite(chosen, be, device=device, rounds=rounds, baselines=not no_baselines, progress=True)
        t = Table(title=f"cases, backend {be}" + (" (energy estimated)" if be == "model" else ""))
        for col in ("case", "kind", "findings", "top-1", "top-3", "category", "knob", "top ratio", "time (s)"):
            t.add_column(col)
        for r in res:
            t.add_row(
                r.id,
                r.kind,
                str(r.n_findings),
                "yes" if r.top1 else "",
                "yes" if r.top3 else "",
                f"{r.category or '-'}{' ok' if r.category_ok else ''}",
                "-" if r.knob_ok is None else ("ok" if r.knob_ok else "wrong"),
                f"{r.top_ratio:.2f}" if r.top_ratio else "-",
                f"{r.analysis_s:.1f}",
            )
        con.print(t)
        summary = summarize(res)
        con.print_json(json.dumps(summary))
        out[be] = {"summary": summary, "cases": to_rows(res)}
    if json_path:
        write_json(Path(json_path), out)
        con.print(f"JSON: {json_path}")


@group.command("windows")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@json_option(help="Write the comparison as JSON.")
def windows_cmd(a: str, b: str, json_path: str | None) -> None:
    """Compare the named windows of two runs saved with ``oe.monitor().save(...)`` (A/B medians with CIs)."""
    from rich.table import Table

    from opgraph.energy.windows import compare_windows, load_windows

    da, db = load_windows(a), load_windows(b)
    rows = compare_windows(da, db)
    con = _console()
    t = Table(title=f"windows: {da.get('label') or a} (A) vs {db.get('label') or b} (B)")
    for col in ("window", "n A", "n B", "time A/B [95% CI]", "energy A/B [95% CI]", "energy"):
        t.add_column(col)

    def cell(r: dict[str, Any], key: str) -> str:
        if r.get(f"{key}_ratio") is None:
            return "-"
        lo, hi = r[f"{key}_ci"]
        return f"{r[f'{key}_ratio']:.3f} [{lo:.3f}, {hi:.3f}]"

    for r in rows:
        t.add_row(
            r["name"],
            str(r["count_a"]),
            str(r["count_b"]),
            cell(r, "wall_s"),
            cell(r, "energy_j"),
            "MODELLED" if r["estimated"] else "measured",
        )
    con.print(t)
    if not rows:
        con.print("[yellow]note:[/] no window name occurs in both files")
    if any(r["estimated"] for r in rows):
        con.print("[yellow]note:[/] modelled energy is CPU time x a constant: it adds nothing beyond time")
    if json_path:
        write_json(Path(json_path), rows)
        con.print(f"JSON: {json_path}")
