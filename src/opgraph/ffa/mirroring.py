"""``mirror``: build the feedback network B from an encoder F, layer by layer, and hold them as a :class:`Pair`.

The encoder body is imported with :func:`opgraph.graph.from_fx` (:func:`opgraph.graph.from_export` where
symbolic tracing fails) and B is built as the *transpose* of that graph:
walking F's graph backwards from the latent,

* ``Conv2d(in, out, k, stride, padding)`` becomes ``ConvTranspose2d(out, in, k, stride, padding,
  output_padding)`` whose weight has the **same shape** ``(out, in, k, k)``; ``output_padding`` is chosen so that
  B's activation has exactly the shape of F's (stride-2 layers get ``output_padding=1`` where needed);
* ``Linear(in, out)`` becomes ``Linear(out, in)`` (weight transposed);
* a fan-out in F (a residual shortcut) becomes a sum in B and an addition becomes a fan-out;
* ``Flatten``/``reshape`` becomes a reshape back to F's shape;
* maximal chains of point-wise layers (BatchNorm, ReLU, Identity) sit at the mirrored position, applied in
  their forward order (``conv -> BN -> ReLU -> conv2`` in F gives ``conv2ᵀ -> BN -> ReLU -> convᵀ`` in B), which
  reproduces the authors' hand-written AsymResLNet10B up to the order of two ReLU/BN pairs.

BatchNorm: by default B gets **its own** BatchNorm layers (same channel count and settings). The authors' code
copies every non-convolution state-dict entry across after each step, which effectively *ties* the affine
parameters of same-named BN layers; ``mirror(..., tie_bn=True)`` reproduces that by sharing the BN modules. For
the methods whose B is not trained (``bp``, ``fa``, ...), :meth:`Pair.sync_decoder` copies F's BN state into B's
BN layers, which is what the authors' copy amounts to for them.

B is stored as an :class:`opgraph.graph.Graph` (``pair.B.graph``) and run with :func:`opgraph.graph.interpret`:
one rule per op, the rule of a layer op calling that layer's module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from opgraph.ffa.errors import FFAError, MirrorError
from opgraph.ffa.layers import FBConv2d, FBConvTranspose2d, FBLinear, fixed_random_like, is_fb_layer, to_fb
from opgraph.ffa.models import HEADS, Encoder

__all__ = ["METHODS", "Decoder", "Pair", "mirror"]

log = logging.getLogger(__name__)

#: Training methods: how F's and B's input gradients are formed and what B learns.
#: ``f``/``b``: feedback mode of F's/B's layers; ``decoder``: what B holds when it is not trained on
#: reconstruction (``init`` = a fixed random initialisation, never trained, as in the authors' BP runs;
#: ``copy`` = F's current weights; ``fa`` = F's random feedback weights; ``sign`` = F's sign feedback). Untrained
#: decoders also take F's BatchNorm parameters, as the authors' state-dict copying does (see docs/ffa.md);
#: ``objective``: ``ffa`` (F on cross-entropy, B on reconstruction of the detached latent), ``classify`` (F only),
#: ``kp`` (F only; B's weight receives F's weight gradient: Kolen-Pollack), ``ae`` (F+B end-to-end on reconstruction).
METHODS: dict[str, dict[str, str]] = {
    "ffa": {"f": "twin", "b": "twin", "decoder": "trained", "objective": "ffa"},
    "bp": {"f": "exact", "b": "exact", "decoder": "init", "objective": "classify"},
    "bp-copy": {"f": "exact", "b": "exact", "decoder": "copy", "objective": "classify"},
    "fa": {"f": "fixed", "b": "exact", "decoder": "fa", "objective": "classify"},
    "kp": {"f": "twin", "b": "exact", "decoder": "kp", "objective": "kp"},
    "sign": {"f": "sign", "b": "exact", "decoder": "sign", "objective": "classify"},
    "ae-bp": {"f": "exact", "b": "exact", "decoder": "trained", "objective": "ae"},
    "ae-fa": {"f": "fixed", "b": "fixed", "decoder": "trained", "objective": "ae"},
}

_POINTWISE = ("bn", "relu", "pass")


def _key(path: str) -> str:
    return path.replace(".", "__") or "root"


class Decoder(nn.Module):
    """The feedback network B: an opgraph graph over mirrored layers, run with :func:`opgraph.graph.interpret`.

    Attributes:
        layers: ``ModuleDict`` of B's layers, keyed by the mirrored F layer's path (dots become ``__``).
        graph: The decoder as an :class:`opgraph.graph.Graph` (input ``z``; ops ``conv_transpose2d``, ``linear``,
            ``batch_norm``, ``relu``, ``add``, ``reshape``; layer nodes carry ``attrs["key"]``).
        output_shape: Shape of one reconstruction ``(C, H, W)``.
    """

    def __init__(self, layers: dict[str, nn.Module], graph: Any, output_shape: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.graph = graph
        self.output_shape = tuple(int(s) for s in output_shape)

    def _rules(self) -> dict[str, Any]:
        layers = self.layers

        def layer(node: Any, x: torch.Tensor) -> torch.Tensor:
            return layers[node.attrs["key"]](x)  # type: ignore[no-any-return]

        return {
            "conv_transpose2d": layer,
            "linear": layer,
            "batch_norm": layer,
            "relu": lambda node, x: torch.relu(x),
            "add": lambda node, a, b: a + b,
            "identity": lambda node, x: x,
            "reshape": lambda node, x: x.reshape(x.shape[0], *node.attrs["shape"]),
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        from opgraph.graph import interpret

        return interpret(self.graph, [z], self._rules())[0]  # type: ignore[no-any-return]


class Pair(nn.Module):
    """An encoder F and its mirrored feedback network B, with the twin-layer correspondence.

    Attributes:
        F: The encoder (a copy of the one given to :func:`mirror`, with feedback layers swapped in).
        B: The :class:`Decoder`.
        twins: ``(F layer path, B layer key)`` for every weight layer; twin weights have equal shapes
            (transposed for Linear).
        encoder_graph: F's body as imported by :func:`opgraph.graph.from_fx`.
        method: The training method last configured (``None`` before :meth:`configure`).
    """

    def __init__(self, F: Encoder, B: Decoder, twins: list[tuple[str, str]], encoder_graph: Any) -> None:  # noqa: N803
        super().__init__()
        self.F = F
        self.B = B
        self.twins = list(twins)
        self.encoder_graph = encoder_graph
        self.method: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image ``(C, H, W)``."""
        return self.F.input_shape

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self.F.n_classes

    def twin_layers(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(F layer, B layer)`` module pairs."""
        return [(self.F.body.get_submodule(f), self.B.layers[b]) for f, b in self.twins]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of ``x`` (F only)."""
        return self.F(x)  # type: ignore[no-any-return]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """One pass of the loop: ``B(F(x))``."""
        return self.B(self.F.features(x))  # type: ignore[no-any-return]

    def configure(self, method: str, *, seed: int = 0) -> None:
        """Set every layer's feedback mode for ``method`` (one of :data:`METHODS`).

        Args:
            method: ``ffa``, ``bp``, ``bp-copy``, ``fa``, ``kp``, ``sign``, ``ae-bp`` or ``ae-fa``.
            seed: Seed of the fixed random feedback weights (FA); the same seed gives the same weights.
        """
        if method not in METHODS:
            raise FFAError(f"method={method!r} is unknown; use one of {', '.join(METHODS)}")
        spec = METHODS[method]
        gen = torch.Generator().manual_seed(int(seed))
        for f_layer, b_layer in self.twin_layers():
            f_layer.set_feedback(spec["f"], twin=b_layer, generator=gen)  # type: ignore[operator]
            b_layer.set_feedback(spec["b"], twin=f_layer, generator=gen)  # type: ignore[operator]
        if spec["decoder"] == "init":
            # the authors' BP decoder: a fixed random tensor drawn like a feedback weight (their BP model is
            # initialised from an FA-built control model whose weight_feedback is never used or updated)
            with torch.no_grad():
                for f_layer, b_layer in self.twin_layers():
                    w = fixed_random_like(f_layer.weight.detach(), gen)
                    b_layer.weight.copy_(w.t() if isinstance(f_layer, FBLinear) else w)
        self.method = method
        self.sync_decoder()

    def bn_twins(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(F BatchNorm, B BatchNorm)`` module pairs (the same module twice when built with ``tie_bn=True``)."""
        out = []
        for key, b_layer in self.B.layers.items():
            if isinstance(b_layer, nn.modules.batchnorm._BatchNorm):
                out.append((self.F.body.get_submodule(key.replace("__", ".")), b_layer))
        return out

    @torch.no_grad()
    def sync_decoder(self) -> None:
        """For methods whose B is not trained, set B to what those methods' feedback path holds.

        Weights: F's weights (``copy``), F's fixed random feedback (``fa``), its sign feedback (``sign``), or the
        untouched random initialisation drawn by :meth:`configure` (``init``, method ``bp``). BatchNorm: B's
        BatchNorm layers take F's same-named BatchNorm state (affine parameters), as the authors' per-step
        state-dict copy does; with ``tie_bn=True`` they are the same modules already.
        """
        if self.method is None:
            return
        kind = METHODS[self.method]["decoder"]
        if kind in ("trained", "kp"):
            return
        for f_bn, b_bn in self.bn_twins():
            if f_bn is not b_bn:
                b_bn.load_state_dict(f_bn.state_dict())
        if kind == "init":
            return
        for f_layer, b_layer in self.twin_layers():
            if kind == "copy":
                w = f_layer.weight
            elif kind == "fa":
                w = f_layer.weight_fa
            else:
                w = f_layer.feedback_weight()
            b_layer.weight.copy_(w.t() if isinstance(f_layer, FBLinear) else w)

    def alignment_deg(self) -> dict[str, float]:
        """Angle in degrees between each F layer's weight and the feedback weight its backward pass uses.

        0 deg for back-propagation (exact mode: the backward pass uses the weight itself); 90 deg is what unrelated
        random tensors give.
        """
        out: dict[str, float] = {}
        for path, _ in self.twins:
            f_layer = self.F.body.get_submodule(path)
            fb = f_layer.feedback_weight()
            if fb is None:
                out[path] = 0.0
                continue
            a = f_layer.weight.detach().flatten().double()
            b = fb.detach().flatten().double()
            cos = float((a @ b) / (a.norm() * b.norm() + 1e-30))
            out[path] = float(torch.rad2deg(torch.arccos(torch.tensor(max(-1.0, min(1.0, cos))))))
        return out

    def n_weights(self) -> tuple[int, int]:
        """Trainable weights of F and of B."""
        return (sum(p.numel() for p in self.F.parameters()), sum(p.numel() for p in self.B.parameters()))

    def extra_repr(self) -> str:  # noqa: D102
        nf, nb = self.n_weights()
        return f"method={self.method!r}, twins={len(self.twins)}, weights F={nf:,} B={nb:,}"


def _classify(g: Any, named: dict[str, nn.Module]) -> dict[int, str]:
    kinds: dict[int, str] = {}
    for node in g.nodes:
        target = node.attrs.get("target")
        mod = named.get(target) if isinstance(target, str) and "module_type" in node.attrs else None
        if node.op == "input":
            kinds[node.id] = "input"
        elif mod is not None:
            if isinstance(mod, nn.Conv2d):
                if mod.groups != 1 or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                    raise MirrorError(
                        f"layer {target!r}: only Conv2d with groups=1, integer zero padding can be mirrored"
                    )
                kinds[node.id] = "conv"
            elif isinstance(mod, nn.Linear):
                kinds[node.id] = "linear"
            elif isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                kinds[node.id] = "bn"
            elif isinstance(mod, nn.ReLU):
                kinds[node.id] = "relu"
            elif isinstance(mod, nn.Identity | nn.Dropout):
                kinds[node.id] = "pass"
            elif isinstance(mod, nn.Flatten):
                kinds[node.id] = "reshape"
            else:
                raise MirrorError(
                    f"layer {target!r} ({type(mod).__name__}) cannot be mirrored; supported layers: Linear, "
                    "Conv2d, BatchNorm1d/2d, ReLU, Identity, Dropout, Flatten (and additions, reshapes)"
                )
        elif node.op == "add" and len(node.inputs) == 2:
            kinds[node.id] = "add"
        elif node.op == "relu":
            kinds[node.id] = "relu"
        elif node.op in ("flatten", "reshape", "view"):
            kinds[node.id] = "reshape"
        elif node.op in ("identity", "contiguous", "dropout"):
            kinds[node.id] = "pass"
        else:
            where = node.meta.get("source", "")
            raise MirrorError(
                f"operation {node.op!r} (node {node.id}{', ' + where if where else ''}) cannot be mirrored; "
                "use Linear/Conv2d/BatchNorm/ReLU layers, additions of two tensors (residual shortcuts) and "
                "flatten/reshape"
            )
    return kinds


def _output_padding(conv: nn.Conv2d, in_hw: Sequence[int], out_hw: Sequence[int]) -> tuple[int, int]:
    pads = []
    for d in range(2):
        base = (out_hw[d] - 1) * conv.stride[d] - 2 * conv.padding[d] + conv.dilation[d] * (conv.kernel_size[d] - 1) + 1
        op = in_hw[d] - base
        if not 0 <= op < max(conv.stride[d], conv.dilation[d]):
            raise MirrorError(f"cannot mirror a Conv2d mapping {tuple(in_hw)} -> {tuple(out_hw)}")
        pads.append(op)
    return pads[0], pads[1]


def mirror(
    encoder: nn.Module,
    *,
    input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
    tie_bn: bool = False,
) -> Pair:
    """Build the feedback network B of ``encoder`` and return the :class:`Pair` (F, B).

    Args:
        encoder: An :class:`~opgraph.ffa.models.Encoder` (from :mod:`opgraph.ffa.models`), or any torch.fx-traceable
            module / ``nn.Sequential`` made of Linear, Conv2d, BatchNorm, ReLU, Flatten layers, residual additions
            and reshapes, mapping images to a latent. A plain module is wrapped: the logits are its output
            (2-D output) or the output's global average (4-D output, one channel per class).
        input_shape: Image shape ``(C, H, W)``; required for a plain module.
        n_classes: Number of classes; default: the plain module's output width / channels.
        tie_bn: Share BatchNorm modules between F and B (what the authors' state-dict copying amounts to).

    Returns:
        The pair. F is a *copy* of ``encoder`` whose Linear/Conv2d layers are feedback layers; the given module
        is left untouched.

    Raises:
        MirrorError: The encoder has a layer or operation that has no mirror.
    """
    from opgraph.graph import GraphBuilder, TraceError, from_export, from_fx

    if isinstance(encoder, Encoder):
        enc = copy.deepcopy(encoder)
    else:
        if not isinstance(encoder, nn.Module):
            raise FFAError(f"encoder must be a torch nn.Module, got {type(encoder).__name__}")
        if input_shape is None:
            raise FFAError("input_shape=(C, H, W) is required to mirror a plain module")
        body = copy.deepcopy(encoder)
        with torch.no_grad():
            probe = body.eval()(torch.zeros(2, *input_shape))
        body.train()
        head = "identity" if probe.dim() == 2 else "avgpool"
        if head not in HEADS or probe.dim() not in (2, 4):
            raise FFAError(f"encoder output has shape {tuple(probe.shape)}; expected (N, K) or (N, K, H, W)")
        enc = Encoder(body, head=head, input_shape=input_shape, n_classes=n_classes or int(probe.shape[1]))
    device = next(enc.parameters()).device
    example = torch.zeros(2, *enc.input_shape, device=device)
    was_training = enc.training
    try:
        g = from_fx(enc.body, [example], leaf_modules=(FBLinear, FBConv2d, FBConvTranspose2d))
    except TraceError:  # real model code (shape checks, int() on sizes): torch.export, in eval mode
        enc.body.eval()
        g = from_export(enc.body, [example])
    enc.train(was_training)
    named = dict(enc.body.named_modules())
    kinds = _classify(g, named)
    if len(g.outputs) != 1:
        raise MirrorError(f"the encoder body must return one tensor (the latent), it returns {len(g.outputs)}")
    users = g.users()

    def shape(i: int) -> tuple[int, ...]:
        s = g.node(i).meta.get("shape")
        if s is None:
            raise MirrorError(f"node {i} ({g.node(i).op}) has no recorded shape")
        return tuple(int(v) for v in s)

    b = GraphBuilder(cse=False, name=f"mirror of {type(enc.body).__name__}")
    z = b.input("z", meta={"shape": shape(g.outputs[0])})
    layers: dict[str, nn.Module] = {}
    twins: list[tuple[str, str]] = []
    contrib: dict[int, list[int]] = {g.outputs[0]: [z]}
    result: list[int] = []
    for v in reversed(range(len(g))):
        if v not in contrib:
            continue
        parts = contrib.pop(v)
        m = parts[0]
        for p in parts[1:]:
            m = b.add("add", (m, p), meta={"shape": shape(v)})
        node = g.node(v)
        kind = kinds[v]
        if kind == "input":
            result.append(m)
            continue
        if kind in _POINTWISE:
            chain = [v]
            p = node.inputs[0]
            while kinds[p] in _POINTWISE and users.get(p, ()) == (chain[0],) and p not in contrib:
                chain.insert(0, p)
                p = g.node(p).inputs[0]
            for c in chain:
                if kinds[c] == "bn":
                    path = g.node(c).attrs["target"]
                    key = _key(path)
                    src = named[path]
                    if tie_bn:
                        layers[key] = src
                    else:
                        layers[key] = copy.deepcopy(src)
                        layers[key].reset_parameters()
                    m = b.add("batch_norm", (m,), {"key": key}, meta={"shape": shape(c), "mirrors": path})
                elif kinds[c] == "relu":
                    m = b.add("relu", (m,), meta={"shape": shape(c)})
            contrib.setdefault(p, []).append(m)
        elif kind == "conv":
            path = node.attrs["target"]
            conv = named[path]
            src = node.inputs[0]
            in_s, out_s = shape(src), shape(v)
            op = _output_padding(conv, in_s[2:], out_s[2:])
            layer = FBConvTranspose2d(
                conv.out_channels,
                conv.in_channels,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                output_padding=op,
                dilation=conv.dilation,
                bias=conv.bias is not None,
            ).to(device)
            key = _key(path)
            layers[key] = layer
            twins.append((path, key))
            m = b.add("conv_transpose2d", (m,), {"key": key}, meta={"shape": in_s, "mirrors": path})
            contrib.setdefault(src, []).append(m)
        elif kind == "linear":
            path = node.attrs["target"]
            lin = named[path]
            src = node.inputs[0]
            layer = FBLinear(lin.out_features, lin.in_features, bias=lin.bias is not None).to(device)
            key = _key(path)
            layers[key] = layer
            twins.append((path, key))
            m = b.add("linear", (m,), {"key": key}, meta={"shape": shape(src), "mirrors": path})
            contrib.setdefault(src, []).append(m)
        elif kind == "add":
            for src in node.inputs:
                contrib.setdefault(src, []).append(m)
        elif kind == "reshape":
            src = node.inputs[0]
            m = b.add("reshape", (m,), {"shape": list(shape(src)[1:])}, meta={"shape": shape(src)})
            contrib.setdefault(src, []).append(m)
        else:  # pass-through kinds are point-wise, handled above
            raise MirrorError(f"node {v} ({node.op}) cannot be mirrored")
    if len(result) != 1:
        raise MirrorError("the encoder body must take exactly one image input that the latent depends on")
    dec_graph = b.build(result, meta={"source": "opgraph.ffa.mirroring"})
    # swap in the feedback layers (the twins' weights have equal shapes: checked by set_feedback)
    for path, _ in twins:
        parent_path, _, name = path.rpartition(".")
        parent = enc.body.get_submodule(parent_path) if parent_path else enc.body
        old = parent.get_submodule(name)
        if not is_fb_layer(old):
            setattr(parent, name, to_fb(old))
    twins.reverse()  # input-to-output order
    dec = Decoder(layers, dec_graph, enc.input_shape)
    pair = Pair(enc, dec, twins, g)
    log.debug("mirrored %s: %d twin layers", type(enc.body).__name__, len(twins))
    return pair
