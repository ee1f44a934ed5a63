"""What ``opgraph perf train --model-type auto`` keeps in the tile space, per held-out family, and what that pays.

For every held-out architecture family (leave one family out on a tile collection such as
``/work/data/heldout-tile``): the training families are split like ``perf train`` does (``split_names``,
``--valid-frac 0.2``), LightGBM and MetaSchedule's XGBoost are trained on the training part, the one with the higher
validation Kendall tau is kept (``choose_model``, ties by slowdown@5), and all of them are scored on the held-out
family. The GNN is left out (12-13 min per fold on this machine against 10-30 s for the two tree models); its
held-out numbers are in the "Held-out architecture families" section of ``docs/benchmarks/perf.md``.

Usage::

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/auto_choice.py --data /work/data/heldout-tile \
        --ms-cache /tmp/ms --json docs/benchmarks/perf_auto_choice.json --doc docs/benchmarks/perf.md

``--screen FOLDER...`` replays tune-tile's one-shot screening on exhaustively measured kernels instead (see
:func:`screen`; numbers in ``docs/benchmarks/perf_auto_screen.json``)::

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/auto_choice.py --data /work/data/heldout-tile \
        --ms-cache /tmp/ms --screen /work/data/tile-tune/real/*/exhaustive \
        --json docs/benchmarks/perf_auto_screen.json --doc docs/benchmarks/perf.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

BEGIN = "<!-- auto-choice:begin -->"
END = "<!-- auto-choice:end -->"
SCREEN_BEGIN = "<!-- auto-screen:begin -->"
SCREEN_END = "<!-- auto-screen:end -->"
MODELS = ("LightGBM", "MetaSchedule XGBoost")


def screen(data: Path, exhaustive: list[Path], ms_cache: Path | None, seed: int, frac: float) -> dict[str, Any]:
    """Replay tune-tile's one-shot screening on exhaustively measured kernels with each ranker as the prior.

    Per kernel of an exhaustive folder (every candidate tile measured): the rankers are trained on the tile
    collection ``data`` without the kernel's family and without any kernel of the same name; the default config
    plus the ranker's top ``max(1, floor(frac * n) - 1)`` other configs are "measured" (their stored runtimes),
    and the best of them is compared with the best of all.
    """
    import numpy as np

    from opgraph._base.jsonio import read_json
    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline, MetaScheduleBaseline
    from opgraph.perf.evaluate import family_of
    from opgraph.perf.tpugraphs import load_records

    recs = load_records(data / "tile" if (data / "tile").is_dir() else data)
    fam_path = data / "families.json"
    fams = dict(read_json(fam_path)) if fam_path.exists() else None
    out: dict[str, Any] = {"frac": frac, "kernels": {}}
    for folder in exhaustive:
        targets = load_records(folder)
        held = {family_of(r, fams) for r in recs if r.name in {t.name for t in targets}}
        names = {t.name for t in targets}
        train = [r for r in recs if family_of(r, fams) not in held and r.name not in names]
        models = {
            "LightGBM": LightGBMBaseline(seed=seed).fit(train),
            "MetaSchedule XGBoost": MetaScheduleBaseline("xgb", seed, ms_cache).fit(train),
            "analytical": AnalyticalBaseline(),
        }
        for t in targets:
            rt = t.target_runtime()
            ref = int(t.measure_meta.get("reference_config", 0))
            k = max(1, int(frac * t.n_configs) - 1)
            row: dict[str, Any] = {"folder": folder.parent.name, "n_configs": t.n_configs, "held_out": sorted(held)}
            for name, m in models.items():
                cost = np.asarray(m.predict(t), dtype=np.float64)
                order = [int(i) for i in np.argsort(cost, kind="stable") if int(i) != ref][:k]
                row[name] = float(rt[[ref, *order]].min() / rt.min())
            out["kernels"][t.name] = row
        out["n_train"] = len(train)
    return out


def screen_block(res: dict[str, Any]) -> str:
    """The markdown block of the screening replay."""
    import numpy as np

    names = ("LightGBM", "MetaSchedule XGBoost", "analytical")
    rows = res["kernels"]
    lines = [
        SCREEN_BEGIN,
        f"Command: `{res['command']}`; {res['date']}; {res['machine']}; load {res['load']}. One-shot screening "
        f"replayed on exhaustively measured kernels: the default + the ranker's top picks, {res['frac']:.0%} of each "
        "kernel's candidates, read from the stored runtimes (no measuring); rankers trained on "
        "`/work/data/heldout-tile` without the kernel's family and without kernels of the same name. Cell: best "
        "picked runtime / best of all (1.000 = found the optimum).",
        "",
        "| model kernels | kernel | configs | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for kname, r in rows.items():
        cells = " | ".join(f"{r[n]:.3f}" for n in names)
        lines.append(f"| {r['folder']} | {kname} | {r['n_configs']} | {cells} |")
    within = {n: sum(r[n] <= 1.05 for r in rows.values()) for n in names}
    geo = {n: float(np.exp(np.mean([np.log(r[n]) for r in rows.values()]))) for n in names}
    lines.append(
        f"| **within 5% / geo-mean** | {len(rows)} kernels | | "
        + " | ".join(f"{within[n]}/{len(rows)} / {geo[n]:.3f}" for n in names)
        + " |"
    )
    return "\n".join([*lines, SCREEN_END]) + "\n"


def run(data: Path, ms_cache: Path | None, valid_frac: float, seed: int) -> dict[str, Any]:
    """Per fold: validation scores, the choice, and every candidate's held-out score."""
    from tqdm.auto import tqdm

    from opgraph._base.jsonio import read_json
    from opgraph.perf.baselines import LightGBMBaseline, MetaScheduleBaseline
    from opgraph.perf.collect import split_names
    from opgraph.perf.evaluate import choose_model, evaluate_model, leave_one_family_out
    from opgraph.perf.tpugraphs import load_records

    recs = load_records(data / "tile" if (data / "tile").is_dir() else data)
    fam_path = data / "families.json"
    fams = dict(read_json(fam_path)) if fam_path.exists() else None
    folds: dict[str, Any] = {}
    for fam, train, test in tqdm(list(leave_one_family_out(recs, fams)), desc="families"):
        tr_names, va_names = split_names([r.name for r in train], valid_frac, seed)
        tr = [r for r in train if r.name in set(tr_names)]
        va = [r for r in train if r.name in set(va_names)]
        fitted, fit_s = {}, {}
        for name in MODELS:
            t0 = time.process_time()
            m = LightGBMBaseline(seed=seed) if name == "LightGBM" else MetaScheduleBaseline("xgb", seed, ms_cache)
            fitted[name] = m.fit(tr)
            fit_s[name] = time.process_time() - t0
        valid = {n: evaluate_model(n, m, va) for n, m in fitted.items()}
        held = {n: evaluate_model(n, m, test) for n, m in fitted.items()}
        chosen = choose_model(valid)
        folds[fam] = {
            "n_train": len(tr),
            "n_valid": len(va),
            "n_test": len(test),
            "chosen": chosen,
            "fit_cpu_s": fit_s,
            "valid": {n: s.summary() for n, s in valid.items()},
            "held_out": {n: s.summary() for n, s in held.items()},
        }
    return {"data": str(data), "valid_frac": valid_frac, "seed": seed, "folds": folds}


def _mean(res: dict[str, Any], which: str, key: str) -> float:
    import numpy as np

    rows = list(res["folds"].values())
    vals = [r["held_out"][r["chosen"] if which == "auto" else which][key] for r in rows]
    return float(np.mean(vals))


def doc_block(res: dict[str, Any]) -> str:
    """The markdown block of the benchmark page (between :data:`BEGIN` and :data:`END`)."""
    lines = [
        BEGIN,
        f"Command: `{res['command']}`; {res['date']}; {res['machine']}; load {res['load']}; "
        f"{res['elapsed_s'] / 60:.1f} min wall. Raw numbers: `docs/benchmarks/perf_auto_choice.json`.",
        "",
        "Per held-out family: training families split as `perf train --valid-frac "
        f"{res['valid_frac']}` does, LightGBM and MetaSchedule's XGBoost trained on the training part, the higher "
        "validation Kendall tau kept (`choose_model`); held-out tau and slowdown@5 of each (GNN left out for time: "
        "12-13 min per fold).",
        "",
        "| held-out family | valid tau LightGBM / XGBoost | kept | held-out tau LightGBM / XGBoost / kept "
        "| held-out slowdown@5 LightGBM / XGBoost / kept |",
        "|---|---|---|---|---|",
    ]
    for fam, r in res["folds"].items():
        v, h = r["valid"], r["held_out"]
        lg, xg, ch = h["LightGBM"], h["MetaSchedule XGBoost"], h[r["chosen"]]
        lines.append(
            f"| {fam} | {v['LightGBM']['kendall_tau']:.3f} / {v['MetaSchedule XGBoost']['kendall_tau']:.3f} | "
            f"{'XGBoost' if r['chosen'] != 'LightGBM' else 'LightGBM'} | {lg['kendall_tau']:.3f} / "
            f"{xg['kendall_tau']:.3f} / {ch['kendall_tau']:.3f} | {lg['slowdown@5']:.1%} / {xg['slowdown@5']:.1%} / "
            f"{ch['slowdown@5']:.1%} |"
        )
    t = {w: _mean(res, w, "kendall_tau") for w in ("LightGBM", "MetaSchedule XGBoost", "auto")}
    s = {w: _mean(res, w, "slowdown@5") for w in ("LightGBM", "MetaSchedule XGBoost", "auto")}
    n_x = sum(r["chosen"] != "LightGBM" for r in res["folds"].values())
    lines.append(
        f"| **mean** | | XGBoost {n_x} of {len(res['folds'])} | {t['LightGBM']:.3f} / "
        f"{t['MetaSchedule XGBoost']:.3f} / {t['auto']:.3f} | {s['LightGBM']:.1%} / {s['MetaSchedule XGBoost']:.1%} "
        f"/ {s['auto']:.1%} |"
    )
    return "\n".join([*lines, END]) + "\n"


def main() -> None:
    """CLI entry point."""
    import os
    import sys

    from opgraph._base.fileio import replace_marked_block
    from opgraph._base.jsonio import read_json, write_json
    from opgraph._base.provenance import machine_line

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="Tile collection (with families.json).")
    ap.add_argument("--ms-cache", type=Path, default=None)
    ap.add_argument("--valid-frac", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="Write the raw numbers here.")
    ap.add_argument("--from-json", type=Path, default=None, help="Re-render a finished run's numbers (no training).")
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument(
        "--screen", type=Path, nargs="*", default=None, help="Exhaustive folders: replay the screening instead."
    )
    ap.add_argument("--screen-frac", type=float, default=0.1)
    args = ap.parse_args()
    if args.screen is not None:
        if args.from_json:
            res = dict(read_json(args.from_json))
        else:
            load0 = os.getloadavg()[0]
            res = screen(args.data, args.screen, args.ms_cache, args.seed, args.screen_frac)
            res.update(
                load=f"{load0:.0f}-{os.getloadavg()[0]:.0f}",
                date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                machine=machine_line(),
                command="python benchmarks/perf/auto_choice.py " + " ".join(sys.argv[1:]),
            )
            if args.json:
                write_json(args.json, res)
        block = screen_block(res)
        print(block)
        if args.doc:
            replace_marked_block(args.doc, SCREEN_BEGIN, SCREEN_END, block)
        return
    if args.from_json:
        res = dict(read_json(args.from_json))
    else:
        if args.data is None:
            ap.error("--data is required (or --from-json)")
        t0 = time.time()
        load0 = os.getloadavg()[0]
        res = run(args.data, args.ms_cache, args.valid_frac, args.seed)
        res.update(
            load=f"{load0:.0f}-{os.getloadavg()[0]:.0f}",
            elapsed_s=time.time() - t0,
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            machine=machine_line(),
            command="python benchmarks/perf/auto_choice.py " + " ".join(sys.argv[1:]),
        )
        if args.json:
            write_json(args.json, res)
    block = doc_block(res)
    print(block)
    if args.doc:
        replace_marked_block(args.doc, BEGIN, END, block)


if __name__ == "__main__":
    main()
