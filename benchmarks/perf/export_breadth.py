"""Breadth of ``opgraph.graph.from_export``: ~25 more Hugging Face architectures than the real zoo's nine.

Every model is built from a ``transformers`` config at a tiny size with random weights (nothing downloaded) and
captured with :func:`opgraph.graph.from_export`. Per model: captured or the error (one line), nodes, the ATen ops
that fell outside the core op table (``graph.meta["unmapped_ops"]``), capture time, the tile kernels
``opgraph.perf`` extracts (distinct by shape, and how many the TVM templates express), the configurable
convolutions of the layout space (and whether a random layout config runs), whether ``energy.record_fx`` records it
through its export path, and whether ``ffa.mirror`` accepts the image models. Writes the marked section
``export-breadth`` of docs/benchmarks/perf_real_zoo.md and docs/benchmarks/perf_export_breadth.json.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/export_breadth.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph._base.fileio import replace_marked_block
from opgraph._base.jsonio import dumps, write_json

BEGIN, END = "<!-- export-breadth:begin -->", "<!-- export-breadth:end -->"
VOCAB = 1000
SEQ = 16
IMAGE = 32

#: shared tiny sizes of a text transformer (BERT-style names).
_BERTISH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
_DECODER = {**_BERTISH, "max_position_embeddings": 64, "use_cache": False}
_VIT = {**_BERTISH, "image_size": IMAGE, "patch_size": 8}


@dataclass(frozen=True)
class Arch:
    """One architecture: config and model class names in ``transformers`` and the input kind.

    Attributes:
        name: Row name.
        config: Config class name.
        model: Model class name (``module:Class`` for a class outside the top-level namespace).
        kwargs: Config keyword arguments (tiny sizes).
        kind: ``text`` (token ids), ``image`` (3x32x32), ``audio`` (raw waveform) or ``mel`` (log-mel frames).
    """

    name: str
    config: str
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"


ARCHS: tuple[Arch, ...] = (
    Arch(
        "distilbert", "DistilBertConfig", "DistilBertModel", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}
    ),
    Arch("roberta", "RobertaConfig", "RobertaModel", {**_BERTISH, "max_position_embeddings": 66, "pad_token_id": 1}),
    Arch("albert", "AlbertConfig", "AlbertModel", {**_BERTISH, "embedding_size": 16}),
    Arch("electra", "ElectraConfig", "ElectraModel", {**_BERTISH, "embedding_size": 16}),
    Arch("deberta_v2", "DebertaV2Config", "DebertaV2Model", dict(_BERTISH)),
    Arch("mpnet", "MPNetConfig", "MPNetModel", dict(_BERTISH)),
    Arch(
        "t5_encoder",
        "T5Config",
        "T5EncoderModel",
        {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2, "use_cache": False},
    ),
    Arch(
        "bart",
        "BartConfig",
        "BartModel",
        {
            "d_model": 32,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 64,
            "use_cache": False,
        },
    ),
    Arch("opt", "OPTConfig", "OPTModel", {**_DECODER, "ffn_dim": 64, "word_embed_proj_dim": 32}),
    Arch("bloom", "BloomConfig", "BloomModel", {"hidden_size": 32, "n_layer": 2, "n_head": 2, "use_cache": False}),
    Arch("gpt_neox", "GPTNeoXConfig", "GPTNeoXModel", dict(_DECODER)),
    Arch(
        "gptj",
        "GPTJConfig",
        "GPTJModel",
        {"n_embd": 32, "n_layer": 2, "n_head": 2, "rotary_dim": 8, "use_cache": False},
    ),
    Arch("falcon", "FalconConfig", "FalconModel", {**_DECODER}),
    Arch("mistral", "MistralConfig", "MistralModel", {**_DECODER, "num_key_value_heads": 1}),
    Arch("qwen2", "Qwen2Config", "Qwen2Model", {**_DECODER, "num_key_value_heads": 1}),
    Arch("qwen3", "Qwen3Config", "Qwen3Model", {**_DECODER, "num_key_value_heads": 1, "head_dim": 16}),
    Arch("phi", "PhiConfig", "PhiModel", dict(_DECODER)),
    Arch("phi3", "Phi3Config", "Phi3Model", dict(_DECODER)),
    Arch("gemma", "GemmaConfig", "GemmaModel", {**_DECODER, "num_key_value_heads": 1, "head_dim": 16}),
    Arch("gemma2", "Gemma2Config", "Gemma2Model", {**_DECODER, "num_key_value_heads": 1, "head_dim": 16}),
    Arch("biogpt", "BioGptConfig", "BioGptModel", {**_BERTISH, "use_cache": False}),
    Arch("big_bird", "BigBirdConfig", "BigBirdModel", {**_BERTISH, "attention_type": "original_full"}),
    Arch("xlnet", "XLNetConfig", "XLNetModel", {"d_model": 32, "n_layer": 2, "n_head": 2, "d_inner": 64}),
    Arch(
        "funnel",
        "FunnelConfig",
        "FunnelModel",
        {"d_model": 32, "n_head": 2, "d_head": 16, "d_inner": 64, "block_sizes": [1, 1]},
    ),
    Arch("fnet", "FNetConfig", "FNetModel", dict(_BERTISH)),
    Arch(
        "mixtral",
        "MixtralConfig",
        "MixtralModel",
        {**_DECODER, "num_key_value_heads": 1, "num_local_experts": 4, "num_experts_per_tok": 2},
    ),
    Arch(
        "mamba",
        "MambaConfig",
        "MambaModel",
        {"hidden_size": 32, "num_hidden_layers": 2, "state_size": 8, "use_cache": False},
    ),
    Arch(
        "rwkv",
        "RwkvConfig",
        "RwkvModel",
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "attention_hidden_size": 32,
            "intermediate_size": 64,
            "context_length": 64,
            "use_cache": False,
        },
    ),
    Arch("longformer", "LongformerConfig", "LongformerModel", {**_BERTISH, "attention_window": [8, 8]}),
    Arch(
        "reformer",
        "ReformerConfig",
        "ReformerModel",
        {
            "hidden_size": 32,
            "num_attention_heads": 2,
            "attention_head_size": 16,
            "feed_forward_size": 64,
            "attn_layers": ["local", "lsh"],
            "axial_pos_shape": [4, 4],
            "axial_pos_embds_dim": [16, 16],
            "local_attn_chunk_length": 8,
            "lsh_attn_chunk_length": 8,
            "num_buckets": 4,
        },
    ),
    Arch("deit", "DeiTConfig", "DeiTModel", dict(_VIT), "image"),
    Arch("beit", "BeitConfig", "BeitModel", dict(_VIT), "image"),
    Arch("dinov2", "Dinov2Config", "Dinov2Model", {**_VIT, "mlp_ratio": 2}, "image"),
    Arch("clip_vision", "CLIPVisionConfig", "CLIPVisionModel", dict(_VIT), "image"),
    Arch(
        "swin",
        "SwinConfig",
        "SwinModel",
        {
            "image_size": IMAGE,
            "patch_size": 4,
            "embed_dim": 16,
            "depths": [1, 1],
            "num_heads": [1, 2],
            "window_size": 4,
        },
        "image",
    ),
    Arch(
        "convnextv2",
        "ConvNextV2Config",
        "ConvNextV2Model",
        {"hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2, "image_size": IMAGE},
        "image",
    ),
    Arch(
        "mobilevit",
        "MobileViTConfig",
        "MobileViTModel",
        {
            "image_size": IMAGE,
            "hidden_sizes": [16, 24, 32],
            "neck_hidden_sizes": [8, 16, 24, 24, 32, 40, 64],
            "num_attention_heads": 2,
        },
        "image",
    ),
    Arch(
        "segformer",
        "SegformerConfig",
        "SegformerModel",
        {
            "num_encoder_blocks": 2,
            "depths": [1, 1],
            "sr_ratios": [2, 1],
            "hidden_sizes": [8, 16],
            "num_attention_heads": [1, 2],
            "patch_sizes": [7, 3],
            "strides": [4, 2],
            "mlp_ratios": [2, 2],
        },
        "image",
    ),
    Arch(
        "mobilenetv1", "MobileNetV1Config", "MobileNetV1Model", {"depth_multiplier": 0.25, "image_size": IMAGE}, "image"
    ),
    Arch(
        "levit",
        "LevitConfig",
        "LevitModel",
        {
            "image_size": 64,
            "hidden_sizes": [32, 48, 64],
            "num_attention_heads": [2, 3, 4],
            "depths": [1, 1, 1],
            "key_dim": [8, 8, 8],
            "down_ops": [["Subsample", 8, 4, 4, 2, 2], ["Subsample", 8, 6, 4, 2, 2]],
        },
        "image",
    ),
    Arch(
        "poolformer",
        "PoolFormerConfig",
        "PoolFormerModel",
        {"hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 1, 1]},
        "image",
    ),
    Arch(
        "whisper_encoder",
        "WhisperConfig",
        "transformers.models.whisper.modeling_whisper:WhisperEncoder",
        {
            "d_model": 32,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "num_mel_bins": 16,
            "max_source_positions": 32,
        },
        "mel",
    ),
    Arch(
        "wav2vec2",
        "Wav2Vec2Config",
        "Wav2Vec2Model",
        {
            **_BERTISH,
            "conv_dim": [16, 16],
            "conv_stride": [5, 2],
            "conv_kernel": [10, 3],
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 2,
            "do_stable_layer_norm": True,
        },
        "audio",
    ),
)


def build(arch: Arch, seed: int = 0) -> tuple[Any, tuple[Any, ...]]:
    """The model (eval mode, random weights) and its example inputs (batch 1)."""
    import importlib

    import torch
    import transformers

    kwargs = dict(arch.kwargs)
    if arch.kind == "text":
        kwargs.setdefault("vocab_size", VOCAB)
        kwargs.setdefault("pad_token_id", 0)  # several configs default to an id beyond the tiny vocabulary
    config = getattr(transformers, arch.config)(**kwargs)
    if ":" in arch.model:
        mod, cls = arch.model.split(":")
        model_cls = getattr(importlib.import_module(mod), cls)
    else:
        model_cls = getattr(transformers, arch.model)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    gen = torch.Generator().manual_seed(seed)
    if arch.kind == "text":
        example: tuple[Any, ...] = (torch.randint(3, VOCAB, (1, SEQ), generator=gen),)
    elif arch.kind == "image":
        side = int(kwargs.get("image_size", IMAGE))
        example = (torch.randn(1, 3, side, side, generator=gen),)
    elif arch.kind == "audio":
        example = (torch.randn(1, 1600, generator=gen),)
    else:  # mel: (batch, mel bins, 2 x max_source_positions frames)
        example = (torch.randn(1, int(kwargs["num_mel_bins"]), 2 * int(kwargs["max_source_positions"]), generator=gen),)
    return model, example


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


class _Latent:
    """Wrap a Hugging Face model so that ``forward`` returns one tensor (the mirrorable latent)."""

    @staticmethod
    def make(model: Any) -> Any:
        import torch

        class Latent(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, x: Any) -> Any:
                out = self.m(x)
                hidden = out[0] if isinstance(out, tuple | list) else out.last_hidden_state
                return hidden.flatten(1) if hidden.dim() == 3 else hidden

        return Latent(model)


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple | list) else getattr(out, "last_hidden_state", out)


def _dynamic(model: Any, example: tuple[Any, ...], kind: str) -> str:
    """Export with the sequence (text) or batch (other) dimension marked ``Dim.AUTO``: dynamic, specialized or failed."""
    import torch

    from opgraph.graph import export_program, from_export

    x = example[0]
    dim = 1 if kind == "text" else 0
    x = torch.cat([x, x], dim)  # a size that is not 1, so that export can keep it symbolic
    try:
        ep = export_program(model, (x,), ({dim: torch.export.Dim.AUTO},))
        g = from_export(ep)
    except Exception as exc:  # noqa: BLE001
        return "no: " + _short(exc, 120)
    ph = next(n for n in ep.graph_module.graph.nodes if n.op == "placeholder" and n.name in _user_inputs(ep))
    symbolic = not isinstance(ph.meta["val"].shape[dim], int)
    un = g.meta.get("unmapped_ops") or {}
    return ("dynamic" if symbolic else "specialized") + (f" (outside the table: {un})" if un else "")


def _user_inputs(ep: Any) -> set[str]:
    return {s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"}


def _masked(model: Any, example: tuple[Any, ...]) -> str:
    """Capture a padded batch of 2 with an ``attention_mask`` keyword input (as Hugging Face users call models)."""
    import torch

    from opgraph.graph import from_export

    ids = example[0].repeat(2, 1)
    mask = torch.ones_like(ids)
    mask[1, -4:] = 0
    try:
        g = from_export(model, (ids,), example_kwargs={"attention_mask": mask})
    except Exception as exc:  # noqa: BLE001
        return "no: " + _short(exc, 120)
    un = g.meta.get("unmapped_ops") or {}
    return "yes" + (f" (outside the table: {un})" if un else "")


def check(arch: Arch, *, energy: bool, mirror: bool) -> dict[str, Any]:
    """Capture one architecture and run the downstream checks; a row of the table."""
    import numpy as np
    import torch

    from opgraph.graph import from_export
    from opgraph.perf.kernels import dedupe_kernels, extract_kernels
    from opgraph.perf.layout import configurable_nodes, sample_configs, wrap_layout
    from opgraph.perf.opcodes import OTHER_OPCODE, opcode_of

    row: dict[str, Any] = {"name": arch.name, "kind": arch.kind, "model": arch.model.rsplit(":", 1)[-1]}
    try:
        model, example = build(arch)
    except Exception as exc:  # noqa: BLE001  (the table reports what failed)
        row["error"] = "build: " + _short(exc)
        return row
    row["params_k"] = sum(p.numel() for p in model.parameters()) / 1e3
    t0 = time.process_time()
    try:
        g = from_export(model, example)
    except Exception as exc:  # noqa: BLE001
        row["capture_cpu_s"] = time.process_time() - t0
        row["error"] = _short(exc, 300)
        return row
    row["capture_cpu_s"] = time.process_time() - t0
    row["strict"] = bool(g.meta.get("strict"))
    row["nodes"] = len(g)
    row["unmapped"] = dict(g.meta.get("unmapped_ops", {}))
    row["other_opcode_nodes"] = sum(opcode_of(n.op) == OTHER_OPCODE for n in g)
    row["dynamic"] = _dynamic(model, example, arch.kind)
    if arch.kind == "text":
        row["mask"] = _masked(model, example)
    try:
        ks = extract_kernels(g, arch.name)
        uniq = dedupe_kernels(ks)
        row["kernels"] = len(ks)
        row["distinct"] = len(uniq)
        row["tvm_ready"] = sum(k.kernel_spec() is not None for k in uniq)
    except Exception as exc:  # noqa: BLE001
        row["kernels_error"] = _short(exc)
    convs = configurable_nodes(g)
    row["layout_convs"] = len(convs)
    if convs:
        try:
            targets = [g.node(i).attrs["target"] for i in convs]
            lm = wrap_layout(model, example, targets)
            cfgs = sample_configs(len(lm.targets), 3, np.random.default_rng(0))
            lm.set_config(cfgs[-1])  # a random mix (rows 0 and 1 are all NCHW and all NHWC)
            out = lm.run()
            ref = model(*example)
            row["layout_runs"] = bool(torch.allclose(_first(out), _first(ref), atol=1e-4, rtol=1e-3))
        except Exception as exc:  # noqa: BLE001
            row["layout_runs"] = False
            row["layout_error"] = _short(exc)
    if energy:
        from opgraph.energy import record_fx

        try:
            run = record_fx(model, example, timing_pass=False)
            row["energy"] = str(run.graph.meta.get("recorder"))
        except Exception as exc:  # noqa: BLE001
            row["energy"] = "no"
            row["energy_error"] = _short(exc)
    if mirror and arch.kind == "image":
        from opgraph.ffa import mirror as ffa_mirror

        try:
            ffa_mirror(_Latent.make(model), input_shape=tuple(example[0].shape[1:]), n_classes=4)
            row["mirror"] = "yes"
        except Exception as exc:  # noqa: BLE001
            row["mirror"] = "no"
            found = re.search(r"operation '([^']+)'", str(exc))
            row["mirror_error"] = f"MirrorError on {found.group(1)}" if found else _short(exc, 120)
    del model, g
    gc.collect()
    return row


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| model | class | captured | nodes | ATen ops outside the op table | capture CPU s | dynamic dim | "
        "attention_mask | kernels (distinct, TVM-ready) | layout convs | energy.record_fx | ffa.mirror |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "nodes" not in r:
            lines.append(f"| {r['name']} | {r['model']} | **no**: {r.get('error', '')} | | | | | | | | | |")
            continue
        un = ", ".join(f"{k} {v}" for k, v in r["unmapped"].items()) or "none"
        kern = f"{r['kernels']} ({r['distinct']}, {r['tvm_ready']})" if "kernels" in r else r.get("kernels_error", "")
        lay = str(r["layout_convs"])
        if r["layout_convs"]:
            lay += " (runs)" if r.get("layout_runs") else f" (fails: {r.get('layout_error', 'output differs')})"
        en = r.get("energy", "not run")
        if en == "no":
            en = f"no: {r.get('energy_error', '')}"
        mi = r.get("mirror", "n/a")
        if mi == "no":
            mi = f"no: {r.get('mirror_error', '')}"
        mode = "strict" if r["strict"] else "non-strict"
        lines.append(
            f"| {r['name']} | {r['model']} | yes ({mode}) | {r['nodes']} | {un} | {r['capture_cpu_s']:.2f} | "
            f"{r.get('dynamic', '')} | {r.get('mask', 'n/a')} | {kern} | {lay} | {en} | {mi} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated architecture names (default: all)")
    ap.add_argument("--no-energy", action="store_true", help="skip energy.record_fx")
    ap.add_argument("--no-mirror", action="store_true", help="skip ffa.mirror")
    ap.add_argument("--out", default="docs/benchmarks/perf_real_zoo.md")
    ap.add_argument("--json", default="docs/benchmarks/perf_export_breadth.json")
    args = ap.parse_args()
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    only = set(args.only.split(",")) if args.only else None
    archs = [a for a in ARCHS if only is None or a.name in only]
    rows = []
    t_all = time.perf_counter()
    for arch in (bar := tqdm(archs, desc="export breadth", unit="model")):
        bar.set_postfix_str(arch.name)
        row = check(arch, energy=not args.no_energy, mirror=not args.no_mirror)
        rows.append(row)
        tqdm.write(dumps(row))
    total_s = time.perf_counter() - t_all
    ok = [r for r in rows if "nodes" in r]
    totals: dict[str, int] = {}
    for r in ok:
        for k, v in r["unmapped"].items():
            totals[k] = totals.get(k, 0) + v
    common = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    load = os.getloadavg()[0]
    cmd = "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/export_breadth.py" + (
        f" --only {args.only}" if args.only else ""
    )
    n_models = len({r["name"] for r in ok})
    lines = [
        BEGIN,
        "## Export breadth: more transformers architectures through `from_export`",
        "",
        f"`{cmd}`; {platform.machine()}, torch {torch.__version__}, transformers "
        f"{__import__('transformers').__version__}, 1 thread, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{total_s:.0f} s wall in all; shared 2-core VM, load average {load:.1f} at the end (times indicative). "
        "Tiny configs, random weights, batch 1, nothing downloaded (text: 16 tokens; images: 32x32 unless the "
        "config says otherwise). `captured`: `opgraph.graph.from_export` (non-strict `torch.export`, strict as the "
        "retry). `ATen ops outside the op table`: `graph.meta['unmapped_ops']` (op: nodes). `dynamic dim`: the "
        "sequence (text) or batch (other) dimension exported as `Dim.AUTO` stays symbolic (`dynamic`) or is "
        "specialized by the model code. `attention_mask`: a padded batch of 2 with the mask as a keyword input "
        "(`example_kwargs`). `kernels`: conv2d / "
        "matmul / batched matmul occurrences that `opgraph.perf.kernels.extract_kernels` finds (distinct by shape; "
        "how many the TVM templates express). `layout convs`: configurable convolutions of the layout space; "
        "`runs`: the model runs under a random mix of NCHW/NHWC convolutions and gives the same output. `energy.record_fx`: which capture path it recorded "
        "through (`export`). `ffa.mirror`: image models only (the last hidden state as the latent).",
        "",
        *_table(rows),
        "",
        f"{len(ok)}/{len(rows)} architectures captured ({n_models} distinct); nodes "
        + (f"{min(r['nodes'] for r in ok)}-{max(r['nodes'] for r in ok)}" if ok else "-")
        + ". ATen ops outside the op table, over all models (nodes): "
        + (", ".join(f"{k} {v}" for k, v in common) or "none")
        + ".",
        END,
    ]
    replace_marked_block(args.out, BEGIN, END, "\n".join(lines))
    write_json(Path(args.json), {"rows": rows, "unmapped_totals": dict(common), "seconds": total_s, "load": load})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
