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
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

BEGIN = "<!-- auto-choice:begin -->"
END = "<!-- auto-choice:end -->"
MODELS = ("LightGBM", "MetaSchedule XGBoost")


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
    args = ap.parse_args()
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
