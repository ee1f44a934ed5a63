"""Capture the real zoo (Hugging Face transformers code, random weights) and extract its tile kernels.

For every family and size: does torch.fx trace it, graph size (nodes) and capture time with the default importer
(``from_module``: fx, else torch.export), configurable convolutions (layout space), kernels (conv / matmul / bmm
with fused epilogue) before and after de-duplication, and how many of the distinct kernels the TVM templates of
``opgraph.perf.tile`` express today. Writes docs/benchmarks/perf_real_zoo.md (and .json beside it).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/real_zoo.py --sizes tiny,small,base,large
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import platform
import time
from pathlib import Path

from opgraph._base.jsonio import dumps, write_json


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,small,base,large")
    ap.add_argument("--families", default="")
    ap.add_argument("--out", default="docs/benchmarks/perf_real_zoo.md")
    args = ap.parse_args()
    import torch

    from opgraph.graph import TraceError, from_fx
    from opgraph.perf import zoo
    from opgraph.perf.collect import graph_of
    from opgraph.perf.kernels import dedupe_kernels, extract_kernels
    from opgraph.perf.layout import configurable_nodes

    torch.set_num_threads(1)
    families = tuple(args.families.split(",")) if args.families else zoo.REAL_FAMILIES
    rows, all_kernels = [], []
    t_all = time.perf_counter()
    for spec in zoo.real_specs(families, tuple(args.sizes.split(","))):
        row: dict = {"name": spec.name, "family": spec.family, "size": spec.size, "input": spec.input_size}
        try:
            t0 = time.perf_counter()
            module, example = spec.build()
            row["build_s"] = time.perf_counter() - t0
            row["params_m"] = sum(p.numel() for p in module.parameters()) / 1e6
            t0 = time.perf_counter()
            try:
                from_fx(module, example)
                row["fx"] = "ok"
            except TraceError:
                row["fx"] = "fails"
            row["fx_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            g = graph_of(module, example)
            row["capture_s"] = time.perf_counter() - t0
            row["importer"] = g.meta.get("source")
            row["nodes"] = len(g)
            row["layout_convs"] = len(configurable_nodes(g)) if spec.convolutional else 0
            ks = extract_kernels(g, spec.name)
            uniq = dedupe_kernels(ks)
            all_kernels += ks
            row["kernels"] = len(ks)
            row["distinct"] = len(uniq)
            row["tvm_ready"] = sum(k.kernel_spec() is not None for k in uniq)
        except Exception as exc:  # noqa: BLE001  (the table reports what failed)
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        rows.append(row)
        print(dumps(row), flush=True)
        del module
        gc.collect()
    uniq_all = dedupe_kernels(all_kernels)
    total_s = time.perf_counter() - t_all
    by_op: dict[str, int] = {}
    for k in uniq_all:
        by_op[k.op] = by_op.get(k.op, 0) + 1
    cmd = "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/real_zoo.py --sizes " + args.sizes
    lines = [
        "# Real zoo: capture and tile kernels",
        "",
        f"`{cmd}`; {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 1 thread, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {total_s:.0f} s in all. Random weights, batch 1, nothing "
        "downloaded. `capture s`: `from_module` (torch.fx attempt + torch.export, non-strict); `fx`: whether "
        "`torch.fx.symbolic_trace` alone works. Kernels: conv2d / matmul / batched matmul (attention's two "
        "included) with fused bias (batch norm folded) and activation; `distinct` after de-duplication by shape "
        "within the model; `TVM now`: distinct kernels the current `opgraph.perf.tile` templates measure (any "
        "stride and groups, no dilation; epilogue: optional bias, then none / relu / gelu / silu / sigmoid / tanh). The 2-core VM is shared with other engineers' jobs: "
        "times are indicative only.",
        "",
        "| model | input | params (M) | fx | importer | nodes | layout convs | capture s | kernels | distinct | TVM now |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['input']} | | | **failed**: {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {r['name']} | {r['input']} | {r['params_m']:.2f} | {r['fx']} | {r['importer']} | {r['nodes']} | "
            f"{r['layout_convs']} | {r['capture_s']:.2f} | {r['kernels']} | {r['distinct']} | {r['tvm_ready']} |"
        )
    ok = [r for r in rows if "error" not in r]
    lines += [
        "",
        f"{len(ok)}/{len(rows)} models captured; nodes {min(r['nodes'] for r in ok)}-{max(r['nodes'] for r in ok)}. "
        f"Kernels over the whole zoo: {len(all_kernels)} occurrences, {len(uniq_all)} distinct by shape "
        f"({', '.join(f'{v} {k}' for k, v in sorted(by_op.items()))}), "
        f"{sum(k.kernel_spec() is not None for k in uniq_all)} of them expressible by the current TVM templates.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    write_json(out.with_suffix(".json"), {"rows": rows, "distinct_kernels": len(uniq_all), "seconds": total_s})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
