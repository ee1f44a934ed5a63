"""Suite part of real pairs: ``transformers`` models (tiny configs, random weights, nothing downloaded) and ``torch.nn``.

Each pair runs the library's own code on both sides; the culprit of a waste case is named as
``"file.py:function"`` in that library's source (``Case.culprit_sites``), so a finding localises the case when
the costly side's call sites include one of those functions. Cases that need ``transformers`` declare
``requires="transformers"`` and are skipped without it (``pip install 'opgraph[models]'``).

The cases are merged into :data:`opgraph.energy.cases.CASES` when that module is imported (:func:`real_cases`;
an id already there is kept).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opgraph.energy.cases import Case

Build = tuple[Any, Any, Any, Any]

#: Mask builders of ``transformers`` that run only for the eager side (part of the cost of choosing eager).
_MASK_SITES = (
    "masking_utils.py:sdpa_mask",
    "masking_utils.py:eager_mask",
    "masking_utils.py:causal_mask_function",
    "masking_utils.py:padding_mask_function",
    "modeling_attn_mask_utils.py:_prepare_4d_attention_mask",
    "modeling_attn_mask_utils.py:_expand_mask",
)


def _seed(device: str) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.device(device)


def _pair_models(cls: Any, cfg: Any, dev: Any, impls: tuple[str, str] = ("eager", "sdpa")) -> list[Any]:
    """Two models of ``cls`` with the same weights, one per attention implementation, in eval mode."""
    models = []
    for impl in impls:
        c = copy.deepcopy(cfg)
        c._attn_implementation = impl
        models.append(cls(c).to(dev).eval())
    models[1].load_state_dict(models[0].state_dict())
    return models


def _bert_config() -> Any:
    import transformers

    return transformers.BertConfig(
        vocab_size=1000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=256,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def _bert_attention(device: str) -> Build:
    import torch
    import transformers

    dev = _seed(device)
    eager, sdpa = _pair_models(transformers.BertModel, _bert_config(), dev)

    def a(ids: Any) -> Any:
        with torch.no_grad():
            return eager(ids).last_hidden_state

    def b(ids: Any) -> Any:
        with torch.no_grad():
            return sdpa(ids).last_hidden_state

    return a, b, (torch.randint(0, 1000, (2, 128), device=dev),), None


def _vit_attention(device: str) -> Build:
    import torch
    import transformers

    dev = _seed(device)
    cfg = transformers.ViTConfig(
        image_size=128,
        patch_size=8,
        num_channels=3,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    eager, sdpa = _pair_models(transformers.ViTModel, cfg, dev)

    def a(px: Any) -> Any:
        with torch.no_grad():
            return eager(px).last_hidden_state

    def b(px: Any) -> Any:
        with torch.no_grad():
            return sdpa(px).last_hidden_state

    return a, b, (torch.randn(2, 3, 128, 128, device=dev),), None


def _tiny_llama_config(layers: int = 1) -> Any:
    import transformers

    return transformers.LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def _generate_cache(device: str) -> Build:
    import torch
    import transformers

    dev = _seed(device)
    cfg = _tiny_llama_config(1)
    cfg._attn_implementation = "sdpa"
    model = transformers.LlamaForCausalLM(cfg).to(dev).eval()
    new = 4

    def run(ids: Any, use_cache: bool) -> Any:
        with torch.no_grad():
            return model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                use_cache=use_cache,
                pad_token_id=cfg.pad_token_id,
            )

    def a(ids: Any) -> Any:
        return run(ids, False)

    def b(ids: Any) -> Any:
        return run(ids, True)

    return a, b, (torch.randint(2, 512, (1, 32), device=dev),), None


def _logits_all_tokens(device: str) -> Build:
    import torch
    import transformers

    dev = _seed(device)
    cfg = _tiny_llama_config(1)
    cfg.vocab_size = 4096
    cfg._attn_implementation = "sdpa"
    model = transformers.LlamaForCausalLM(cfg).to(dev).eval()

    def a(ids: Any) -> Any:
        with torch.no_grad():
            return model(ids).logits[:, -1]

    def b(ids: Any) -> Any:
        with torch.no_grad():
            return model(ids, logits_to_keep=1).logits[:, -1]

    return a, b, (torch.randint(2, 4096, (4, 128), device=dev),), None


def _bert_layer_vs_nn(device: str) -> Build:
    import torch
    import transformers

    dev = _seed(device)
    cfg = _bert_config()
    cfg._attn_implementation = "sdpa"
    hf = transformers.models.bert.modeling_bert.BertLayer(cfg).to(dev).eval()
    d = cfg.hidden_size
    nn_layer = torch.nn.TransformerEncoderLayer(
        d,
        cfg.num_attention_heads,
        cfg.intermediate_size,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=cfg.layer_norm_eps,
        batch_first=True,
    )
    sa = hf.attention.self
    with torch.no_grad():
        nn_layer.self_attn.in_proj_weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
        nn_layer.self_attn.in_proj_bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        nn_layer.self_attn.out_proj.weight.copy_(hf.attention.output.dense.weight)
        nn_layer.self_attn.out_proj.bias.copy_(hf.attention.output.dense.bias)
        nn_layer.norm1.load_state_dict(hf.attention.output.LayerNorm.state_dict())
        nn_layer.linear1.load_state_dict(hf.intermediate.dense.state_dict())
        nn_layer.linear2.load_state_dict(hf.output.dense.state_dict())
        nn_layer.norm2.load_state_dict(hf.output.LayerNorm.state_dict())
    nn_layer = nn_layer.to(dev).eval()

    def a(x: Any) -> Any:
        with torch.no_grad():
            out = hf(x)
            return out[0] if isinstance(out, tuple) else out

    def b(x: Any) -> Any:
        with torch.no_grad():
            return nn_layer(x)

    # 4 x 32 tokens: at 4 x 128 the two sides differ by only 1.11-1.14x in CPU time (the GEMMs dominate both),
    # under the calibrated threshold of a loaded machine (docs/benchmarks/energy.md, "hf-bert-layer-vs-nn")
    return a, b, (torch.randn(4, 32, d, device=dev),), None


def _llama_mlp_control(device: str) -> Build:
    import torch
    import torch.nn.functional as F
    import transformers

    dev = _seed(device)
    cfg = transformers.LlamaConfig(hidden_size=256, intermediate_size=512, hidden_act="silu")
    hf = transformers.models.llama.modeling_llama.LlamaMLP(cfg).to(dev).eval()
    gate, up, down = (
        torch.nn.Linear(256, 512, bias=False),
        torch.nn.Linear(256, 512, bias=False),
        torch.nn.Linear(512, 256, bias=False),
    )
    with torch.no_grad():
        gate.weight.copy_(hf.gate_proj.weight)
        up.weight.copy_(hf.up_proj.weight)
        down.weight.copy_(hf.down_proj.weight)
    gate, up, down = gate.to(dev), up.to(dev), down.to(dev)

    def a(x: Any) -> Any:
        with torch.no_grad():
            return hf(x)

    def b(x: Any) -> Any:
        with torch.no_grad():
            return down(F.silu(gate(x)) * up(x))

    return a, b, (torch.randn(4, 64, 256, device=dev),), None


def _encoder_train_mode(device: str) -> Build:
    import torch

    dev = _seed(device)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    slow = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).to(dev)
    fast = copy.deepcopy(slow)
    slow.train()  # dropout is 0, so training mode computes the same function, but off the fast path
    fast.eval()

    def train_mode_call(x: Any) -> Any:
        with torch.no_grad():
            return slow(x)

    def b(x: Any) -> Any:
        with torch.no_grad():
            return fast(x)

    return train_mode_call, b, (torch.randn(4, 64, 128, device=dev),), None


def _mha_need_weights(device: str) -> Build:
    import torch

    dev = _seed(device)
    mha = torch.nn.MultiheadAttention(128, 4, dropout=0.0, batch_first=True).to(dev).train()

    def need_weights_call(x: Any) -> Any:
        with torch.no_grad():
            return mha(x, x, x)[0]  # need_weights defaults to True: explicit weights, no SDPA

    def b(x: Any) -> Any:
        with torch.no_grad():
            return mha(x, x, x, need_weights=False)[0]

    return need_weights_call, b, (torch.randn(4, 256, 128, device=dev),), None


def _encoder_empty_pad_mask(device: str) -> Build:
    import torch

    dev = _seed(device)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    # enable_nested_tensor=False keeps both sides dense: the pair isolates the masked-softmax path
    enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).to(dev).eval()

    def empty_mask_call(x: Any, pad: Any) -> Any:
        with torch.no_grad():
            return enc(x, src_key_padding_mask=pad)  # a padding mask that masks nothing: masked-softmax path

    def b(x: Any, pad: Any) -> Any:
        with torch.no_grad():
            return enc(x)

    x = torch.randn(8, 128, 128, device=dev)
    return empty_mask_call, b, (x, torch.zeros(8, 128, dtype=torch.bool, device=dev)), None


#: The slow path's code in torch.nn (the recorder keeps the innermost library line of each op beside the user's
#: line, so a finding names these), and the user's line that selects the slow path.
_TORCH_SLOW_PATH = (
    "cases_real.py:train_mode_call",
    "functional.py:multi_head_attention_forward",
    "functional.py:layer_norm",
    "functional.py:softmax",
    "transformer.py:_sa_block",
    "transformer.py:_ff_block",
    "transformer.py:forward",
    "activation.py:forward",
    "linear.py:forward",
)


def real_cases() -> dict[str, Case]:
    """The real-library cases, by id (merged into ``opgraph.energy.cases.CASES``)."""
    from opgraph.energy.cases import Case  # here, not at the top: cases.py imports this module at its end

    return {
        c.id: c
        for c in [
            Case(
                "hf-bert-eager-attn",
                "hf-39072 (transformers)",
                "waste",
                "api_misuse",
                None,
                _bert_attention,
                "transformers BertModel (2 layers, 2x128 tokens): attn_implementation eager vs sdpa",
                requires="transformers",
                culprit_sites=("modeling_bert.py:eager_attention_forward", *_MASK_SITES),
            ),
            Case(
                "hf-vit-eager-attn",
                "hf-39072 (transformers)",
                "waste",
                "api_misuse",
                None,
                _vit_attention,
                "transformers ViTModel (2 layers, 2 images of 16x16 patches): attn_implementation eager vs sdpa",
                requires="transformers",
                culprit_sites=("modeling_vit.py:eager_attention_forward",),
            ),
            Case(
                "hf-llama-generate-nocache",
                "decode without KV cache (transformers)",
                "waste",
                "redundant",
                None,
                _generate_cache,
                "transformers LlamaForCausalLM (1 layer) greedy generate of 4 tokens: use_cache=False vs True",
                requires="transformers",
                culprit_sites=(
                    "modeling_llama.py:forward",
                    "modeling_llama.py:apply_rotary_pos_emb",
                    "modeling_llama.py:rotate_half",
                    "modeling_llama.py:eager_attention_forward",
                    "sdpa_attention.py:sdpa_attention_forward",
                    "linear.py:forward",
                    *_MASK_SITES,
                ),
            ),
            Case(
                "hf-llama-logits-all",
                "hf-38977 (transformers)",
                "waste",
                "redundant",
                None,
                _logits_all_tokens,
                "transformers LlamaForCausalLM forward, last-token logits: logits_to_keep=0 (default) vs 1",
                requires="transformers",
                culprit_sites=("modeling_llama.py:forward", "linear.py:forward"),
            ),
            Case(
                "hf-bert-layer-vs-nn",
                "Hugging Face block vs torch.nn",
                "waste",
                "api_misuse",
                None,
                _bert_layer_vs_nn,
                "transformers BertLayer (sdpa) vs nn.TransformerEncoderLayer, same weights (eval fast path), 4x32 tokens",
                requires="transformers",
                culprit_sites=(
                    "modeling_bert.py:forward",
                    "modeling_bert.py:feed_forward_chunk",
                    "sdpa_attention.py:sdpa_attention_forward",
                    "pytorch_utils.py:apply_chunking_to_forward",
                    "activations.py:forward",
                    "linear.py:forward",
                    "normalization.py:forward",
                    "functional.py:layer_norm",  # the innermost library line of nn.LayerNorm's op
                ),
            ),
            Case(
                "control-hf-llama-mlp",
                "Hugging Face block vs torch.nn",
                "control",
                None,
                None,
                _llama_mlp_control,
                "transformers LlamaMLP vs the same three nn.Linear and F.silu written by hand",
                requires="transformers",
            ),
            Case(
                "nn-encoder-train-mode",
                "torch.nn fast path",
                "waste",
                "api_misuse",
                None,
                _encoder_train_mode,
                "nn.TransformerEncoder (2 layers, dropout 0) under no_grad: training mode (slow path) vs eval (fast)",
                culprit_sites=_TORCH_SLOW_PATH,
            ),
            Case(
                "nn-encoder-empty-pad-mask",
                "pytorch-94428 (fast path slower with src_key_padding_mask)",
                "waste",
                "api_misuse",
                None,
                _encoder_empty_pad_mask,
                "nn.TransformerEncoder (eval fast path): an all-False src_key_padding_mask vs no mask",
                culprit_sites=("cases_real.py:empty_mask_call", "transformer.py:forward"),
            ),
            Case(
                "nn-mha-need-weights",
                "torch.nn MultiheadAttention default",
                "waste",
                "redundant",  # weights computed and averaged over heads, then thrown away by the caller
                None,
                _mha_need_weights,
                "nn.MultiheadAttention off the fast path: need_weights=True (default) vs False (SDPA)",
                culprit_sites=("cases_real.py:need_weights_call", "functional.py:multi_head_attention_forward"),
            ),
        ]
    }
