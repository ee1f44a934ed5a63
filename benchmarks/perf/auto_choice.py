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

``--replay-rules HELDOUT_JSON`` replays ``perf train --select-by``'s rules on stored results, no training
(:func:`replay_rules`; numbers in ``docs/benchmarks/perf_auto_rule.json``)::

    PYTHONPATH=src python benchmarks/perf/auto_choice.py --replay-rules docs/benchmarks/perf_heldout.json \
        --from-json docs/benchmarks/perf_auto_choice.json --json docs/benchmarks/perf_auto_rule.json \
        --doc docs/benchmarks/perf.md

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


RULE_BEGIN = "<!-- auto-rule:begin -->"
RULE_END = "<!-- auto-rule:end -->"
#: ``perf train --model-type auto``'s candidates per space (MetaSchedule's XGBoost: tile only)
CANDIDATES = {
    "tile": ("GNN", "LightGBM", "MetaSchedule XGBoost", "GNN + LightGBM"),
    "layout": ("GNN", "LightGBM", "GNN + LightGBM", "GNN + analytical"),
}


def _pooled(fams: dict[str, Any], model: str, keep: list[str]) -> dict[str, float]:
    """Mean over the graphs of the families ``keep`` of each per-graph metric of ``model`` (a validation summary)."""
    import numpy as np

    per = [fams[f]["models"][model]["per_graph"] for f in keep]
    out = {}
    for metric in per[0]:
        vals = [float(v) for p in per for v in p[metric].values()]
        vals = [v for v in vals if np.isfinite(v)]
        out[metric] = float(np.mean(vals)) if vals else float("nan")
    return out


def replay_rules(heldout: dict[str, Any], auto: dict[str, Any] | None) -> dict[str, Any]:
    """Replay ``perf train``'s selection rules on stored held-out results (no training).

    * ``heldout`` (``docs/benchmarks/perf_heldout.json`` with per-graph metrics, ``heldout.py pergraph``): per held-out
      family F, each rule picks among ``auto``'s candidates by their metrics pooled over the graphs of the *other*
      families (each scored by a model trained without that family, so a validation set of unseen graphs, as
      ``perf train``'s), and the pick is scored on F. Every candidate, the GNN included, takes part.
    * ``auto`` (``docs/benchmarks/perf_auto_choice.json``): the folds of :func:`run`, LightGBM against XGBoost
      trained on 80 % of the training families and chosen on the other 20 % as ``perf train`` does.
    """
    from opgraph.perf.evaluate import SELECT_BY, choose_model

    out: dict[str, Any] = {}
    for kind in ("tile", "layout"):
        fams = heldout.get(kind, {}).get("families") or {}
        cands = [c for c in CANDIDATES[kind] if all("per_graph" in fr["models"].get(c, {}) for fr in fams.values())]
        if len(cands) < 2:
            continue
        folds = {}
        for fam in fams:
            others = [f for f in fams if f != fam]
            valid = {c: _pooled(fams, c, others) for c in cands}
            folds[fam] = {
                "chosen": {r: choose_model(valid, select_by=r, kind=kind) for r in SELECT_BY},
                "held_out": {c: {k: float(v) for k, v in fams[fam]["models"][c]["summary"].items()} for c in cands},
            }
        out[f"heldout-{kind}"] = {"kind": kind, "candidates": cands, "folds": folds}
    if auto:
        folds = {}
        for fam, r in auto["folds"].items():
            valid = {n: dict(v) for n, v in r["valid"].items()}
            folds[fam] = {
                "chosen": {rule: choose_model(valid, select_by=rule, kind="tile") for rule in SELECT_BY},
                "held_out": r["held_out"],
            }
        out["auto-choice-tile"] = {"kind": "tile", "candidates": list(MODELS), "folds": folds}
    return out


def rule_block(res: dict[str, Any]) -> str:
    """The markdown block of the rule replay."""
    import numpy as np

    from opgraph.perf.evaluate import SELECT_BY, selection_reason

    lines = [
        RULE_BEGIN,
        f"Command: `{res['command']}`; {res['date']}; no training (stored results only). Raw numbers: "
        "`docs/benchmarks/perf_auto_rule.json`.",
        "",
        "Rules (`perf train --select-by`): "
        + "; ".join(f"**{r}** = {selection_reason(r, 'tile')} (layout: @10)" for r in SELECT_BY)
        + ". Replays: **heldout-tile / heldout-layout**: per held-out family, `auto`'s candidates (GNN included) are "
        "compared on the graphs of the other families (each scored by its held-out model, trained without that "
        "family: unseen graphs, like `perf train`'s validation graphs), the rule picks one and the pick is scored "
        "on the held-out family (`docs/benchmarks/perf_heldout.json`, section 'Held-out architecture families'). "
        "**auto-choice-tile**: the folds of the section above (LightGBM against XGBoost, trained on 80 % of the "
        "training families, validated on the other 20 %). Cells: mean over held-out families of the picked model's "
        "held-out metric; 'always X' = no selection.",
        "",
    ]
    for name, r in res["replays"].items():
        k = 5 if r["kind"] == "tile" else 10
        keys = ["kendall_tau", "opa", "slowdown@1", f"slowdown@{k}"]
        folds = r["folds"]
        lines += [
            f"**{name}** ({len(folds)} folds; candidates: {', '.join(r['candidates'])})",
            "",
            "| selection | tau | OPA | slowdown@1 | slowdown@" + str(k) + " | picks |",
            "|---|---|---|---|---|---|",
        ]

        def row(label: str, pick: Any, picks: str, keys: list[str] = keys, folds: dict[str, Any] = folds) -> str:
            vals = [float(np.mean([float(f["held_out"][pick(f)][m]) for f in folds.values()])) for m in keys]
            cells = [f"{vals[0]:.3f}", f"{vals[1]:.3f}", f"{vals[2]:.1%}", f"{vals[3]:.2%}"]
            return f"| {label} | " + " | ".join(cells) + f" | {picks} |"

        for rule in SELECT_BY:
            chosen = [f["chosen"][rule] for f in folds.values()]
            picks = ", ".join(f"{c} {chosen.count(c)}" for c in dict.fromkeys(chosen))
            lines.append(row(f"--select-by {rule}", lambda f, rule=rule: f["chosen"][rule], picks))
        for c in r["candidates"]:
            lines.append(row(f"always {c}", lambda f, c=c: c, "-"))
        lines.append("")
    return "\n".join([*lines, RULE_END]) + "\n"


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
    ap.add_argument(
        "--replay-rules",
        type=Path,
        default=None,
        help="perf_heldout.json with per-graph metrics: replay the --select-by rules on it (and on --from-json).",
    )
    args = ap.parse_args()
    if args.replay_rules is not None:
        auto = dict(read_json(args.from_json)) if args.from_json else None
        res = {
            "replays": replay_rules(dict(read_json(args.replay_rules)), auto),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python benchmarks/perf/auto_choice.py " + " ".join(sys.argv[1:]),
        }
        if args.json:
            write_json(args.json, res)
        block = rule_block(res)
        print(block)
        if args.doc:
            replace_marked_block(args.doc, RULE_BEGIN, RULE_END, block)
        return
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
