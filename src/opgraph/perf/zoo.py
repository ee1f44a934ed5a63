"""A seeded generator of PyTorch models (no downloads): CNN families, MLPs and transformer blocks.

``generate(n, seed)`` returns :class:`ZooSpec` records; ``spec.build()`` makes the ``nn.Module`` (eval mode) and
its example inputs. The same (family, seed) always gives the same architecture, so hundreds of distinct graphs come
from one run seed. Convolutional families (``mobilenet``, ``resnet``, ``vgg``, ``unet``) have configurable
convolutions for the layout space; ``mlp`` and ``transformer`` graphs have none and serve as extra graphs for
features and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bumped whenever an architecture drawn for a given (family, seed) changes (cached datasets are keyed on it).
ZOO_VERSION = 2
CNN_FAMILIES = ("mobilenet", "resnet", "vgg", "unet")
FAMILIES = CNN_FAMILIES + ("mlp", "transformer")


@dataclass(frozen=True)
class ZooSpec:
    """A reproducible model: family name + seed (+ a size scale).

    Attributes:
        family: One of :data:`FAMILIES`.
        seed: Seed of the architecture sampler.
        scale: Multiplies the spatial size / batch of the example input (1.0 = default, smaller = faster).
    """

    family: str
    seed: int
    scale: float = 1.0

    @property
    def name(self) -> str:
        """File-safe unique name, e.g. ``mobilenet_s1234``."""
        sc = "" if self.scale == 1.0 else f"_x{self.scale:g}".replace(".", "p")
        return f"{self.family}_s{self.seed}{sc}"

    def build(self) -> tuple[Any, tuple[Any, ...]]:
        """Return ``(module, example_inputs)``; the module is in eval mode."""
        import torch

        if self.family not in FAMILIES:
            from opgraph.perf.errors import PerfError

            raise PerfError(f"unknown zoo family {self.family!r}; choose one of {FAMILIES}")
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed % (2**31))
        module, example = _BUILDERS[self.family](rng, self.scale)
        module.eval()
        return module, example


def generate(n: int, seed: int = 0, *, families: tuple[str, ...] = CNN_FAMILIES, scale: float = 1.0) -> list[ZooSpec]:
    """Return ``n`` distinct specs cycling through ``families``; architecture seeds derive from ``seed``.

    Args:
        n: Number of models.
        seed: Run seed.
        families: Families to cycle through (default: the convolutional ones).
        scale: Input size scale passed to every spec.

    Returns:
        Specs with distinct names.
    """
    from opgraph.perf.errors import PerfError

    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise PerfError(f"unknown zoo families {bad}; choose from {FAMILIES}")
    rng = np.random.default_rng(seed)
    seeds = rng.choice(10**6, size=n, replace=False)
    return [ZooSpec(families[i % len(families)], int(s), scale) for i, s in enumerate(seeds)]


def _size(rng: np.random.Generator, scale: float, choices: tuple[int, ...]) -> int:
    return max(8, int(round(int(rng.choice(choices)) * scale / 8)) * 8)


def _mobilenet(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    class InvRes(nn.Module):
        def __init__(self, cin: int, cout: int, expand: int, stride: int, k: int) -> None:
            super().__init__()
            hid = cin * expand
            self.use_res = stride == 1 and cin == cout
            self.expand = nn.Conv2d(cin, hid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(hid)
            self.dw = nn.Conv2d(hid, hid, k, stride, k // 2, groups=hid, bias=False)
            self.bn2 = nn.BatchNorm2d(hid)
            self.project = nn.Conv2d(hid, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.act = nn.ReLU6()

        def forward(self, x: Any) -> Any:
            y = self.act(self.bn1(self.expand(x)))
            y = self.act(self.bn2(self.dw(y)))
            y = self.bn3(self.project(y))
            return x + y if self.use_res else y

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = int(rng.choice([8, 16, 24]))
            self.stem = nn.Conv2d(3, c, 3, 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            blocks = []
            for _ in range(int(rng.integers(2, 5))):
                cout = int(min(96, c * rng.choice([1, 1, 2])))
                stride = int(rng.choice([1, 1, 2]))
                blocks.append(InvRes(c, cout, int(rng.choice([2, 4, 6])), stride, int(rng.choice([3, 3, 5]))))
                c = cout
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Conv2d(c, c * 2, 1)
            self.fc = nn.Linear(c * 2, 10)

        def forward(self, x: Any) -> Any:
            x = torch.relu(self.bn(self.stem(x)))
            x = self.blocks(x)
            x = torch.relu(self.head(x))
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return self.fc(x)

    hw = _size(rng, scale, (48, 64, 80))
    batch = int(rng.choice([2, 4]))
    return Net(), (torch.randn(batch, 3, hw, hw),)


def _resnet(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.short = nn.Conv2d(cin, cout, 1, stride, bias=False) if (stride != 1 or cin != cout) else None

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            s = x if self.short is None else self.short(x)
            return torch.relu(y + s)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = int(rng.choice([8, 16, 24]))
            k = int(rng.choice([3, 5]))
            self.stem = nn.Conv2d(3, c, k, 1, k // 2, bias=False)
            blocks = []
            for _ in range(int(rng.integers(3, 5))):
                stride = int(rng.choice([1, 2]))
                cout = int(min(64, c * (2 if stride == 2 else 1)))
                blocks.append(Block(c, cout, stride))
                c = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(c, 10)

        def forward(self, x: Any) -> Any:
            x = torch.relu(self.stem(x))
            x = self.blocks(x)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    hw = _size(rng, scale, (32, 40, 48))
    batch = int(rng.choice([2, 4]))
    return Net(), (torch.randn(batch, 3, hw, hw),)


def _vgg(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    layers: list[Any] = []
    c = 3
    for _ in range(int(rng.integers(3, 5))):
        cout = int(rng.choice([8, 16, 32, 48]))
        for _ in range(int(rng.integers(2, 4))):
            layers += [nn.Conv2d(c, cout, 3, 1, 1), nn.ReLU()]
            c = cout
        layers.append(nn.MaxPool2d(2))
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    hw = _size(rng, scale, (32, 48, 56))
    return net, (torch.randn(int(rng.choice([2, 4])), 3, hw, hw),)


def _unet(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    depth = int(rng.integers(2, 4))
    base = int(rng.choice([8, 12, 16]))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.ModuleList()
            self.up = nn.ModuleList()
            self.dec = nn.ModuleList()
            c = 3
            chans = []
            for d in range(depth):
                cout = base * 2**d
                self.down.append(nn.Sequential(nn.Conv2d(c, cout, 3, 1, 1), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1)))
                chans.append(cout)
                c = cout
            self.mid = nn.Conv2d(c, c, 3, 1, 1)
            for d in reversed(range(depth - 1)):
                self.up.append(nn.ConvTranspose2d(c, chans[d], 2, 2))
                self.dec.append(nn.Conv2d(2 * chans[d], chans[d], 3, 1, 1))
                c = chans[d]
            self.out = nn.Conv2d(c, 2, 1)

        def forward(self, x: Any) -> Any:
            skips = []
            for i, blk in enumerate(self.down):
                x = torch.relu(blk(x))
                if i < depth - 1:
                    skips.append(x)
                    x = nn.functional.max_pool2d(x, 2)
            x = torch.relu(self.mid(x))
            for up, dec in zip(self.up, self.dec):
                x = up(x)
                x = torch.relu(dec(torch.cat([x, skips.pop()], 1)))
            return self.out(x)

    hw = _size(rng, scale, (32, 48))
    return Net(), (torch.randn(int(rng.choice([1, 2])), 3, hw, hw),)


def _mlp(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    dims = [int(rng.choice([64, 128, 256]))] + [int(rng.choice([64, 128, 256, 512])) for _ in range(rng.integers(2, 5))]
    layers: list[Any] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.GELU() if rng.random() < 0.5 else nn.ReLU()]
    layers.append(nn.Linear(dims[-1], 10))
    return nn.Sequential(*layers), (torch.randn(max(1, int(32 * scale)), dims[0]),)


def _transformer(rng: np.random.Generator, scale: float) -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    d = int(rng.choice([32, 64, 96]))
    heads = int(rng.choice([2, 4]))
    ff = d * int(rng.choice([2, 4]))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.ff1 = nn.Linear(d, ff)
            self.ff2 = nn.Linear(ff, d)

        def forward(self, x: Any) -> Any:
            q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
            q = q.reshape(-1, t, heads, d // heads).transpose(1, 2)
            k = k.reshape(-1, t, heads, d // heads).transpose(1, 2)
            v = v.reshape(-1, t, heads, d // heads).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-2, -1) * (d // heads) ** -0.5, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(-1, t, d)
            x = x + self.proj(y)
            return x + self.ff2(nn.functional.gelu(self.ff1(self.ln2(x))))

    t = max(4, int(int(rng.choice([16, 32, 64])) * scale))
    n_blocks = int(rng.integers(1, 3))
    net = nn.Sequential(*[Block() for _ in range(n_blocks)])
    return net, (torch.randn(2, t, d),)


_BUILDERS = {
    "mobilenet": _mobilenet,
    "resnet": _resnet,
    "vgg": _vgg,
    "unet": _unet,
    "mlp": _mlp,
    "transformer": _transformer,
}


# ---------------------------------------------------------------------------------------------------------------------
# Real architectures: Hugging Face ``transformers`` model code built from configs with random weights (extra
# ``models``; nothing is downloaded). torch.fx cannot trace this code: graphs come from torch.export.

#: Real families; the convolutional ones have a layout space.
REAL_CNN_FAMILIES = ("resnet", "mobilenetv2", "convnext", "efficientnet", "regnet")
REAL_FAMILIES = REAL_CNN_FAMILIES + ("vit", "bert", "gpt2", "llama")
#: More real families (``benchmarks/perf/export_breadth.py`` captures them cleanly): MobileViT (convolutions and
#: attention; layout space), Swin (windowed attention), Qwen2 (grouped-query decoder with q/k/v biases) and the T5
#: encoder (relative position bias, no biases). Opt-in (``real_specs(REAL_EXTRA_FAMILIES)``): the defaults, the
#: collected datasets and the held-out splits keep the nine families above.
REAL_EXTRA_FAMILIES = ("mobilevit", "swin", "qwen2", "t5")
_IMAGE_FAMILIES = frozenset(REAL_CNN_FAMILIES + ("vit", "mobilevit", "swin"))
#: Sizes, smallest first: ``tiny`` for tests (tens to ~200 nodes), ``base`` for the published widths (ResNet-18,
#: MobileNetV2 1.0, ConvNeXt-T, EfficientNet-B0, ViT-Ti, BERT-base, GPT-2 small) and ``large`` for bigger depths.
REAL_SIZES = ("tiny", "small", "base", "large")

_VOCAB = 1000

#: family -> size -> (config keyword arguments, input size: image side or sequence length).
_REAL_CONFIGS: dict[str, dict[str, tuple[dict[str, Any], int]]] = {
    "resnet": {
        "tiny": ({"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic"}, 32),
        "small": (
            {"embedding_size": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "layer_type": "basic"},
            64,
        ),
        "base": (  # ResNet-18
            {"embedding_size": 64, "hidden_sizes": [64, 128, 256, 512], "depths": [2, 2, 2, 2], "layer_type": "basic"},
            96,
        ),
        "large": (  # ResNet-50
            {"embedding_size": 64, "hidden_sizes": [256, 512, 1024, 2048], "depths": [3, 4, 6, 3]},
            96,
        ),
    },
    "mobilenetv2": {
        "tiny": ({"depth_multiplier": 0.35}, 32),
        "small": ({"depth_multiplier": 0.5}, 64),
        "base": ({"depth_multiplier": 1.0}, 96),
        "large": ({"depth_multiplier": 1.4}, 128),
    },
    "convnext": {
        "tiny": ({"hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2}, 32),
        "small": ({"hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 2, 1]}, 64),
        "base": ({"hidden_sizes": [96, 192, 384, 768], "depths": [3, 3, 9, 3]}, 96),
        "large": ({"hidden_sizes": [128, 256, 512, 1024], "depths": [3, 3, 27, 3]}, 96),
    },
    "efficientnet": {
        "tiny": ({"width_coefficient": 0.25, "depth_coefficient": 0.25}, 32),
        "small": ({"width_coefficient": 0.5, "depth_coefficient": 0.5}, 64),
        "base": ({"width_coefficient": 1.0, "depth_coefficient": 1.0}, 96),
        "large": ({"width_coefficient": 1.2, "depth_coefficient": 1.4}, 128),
    },
    "regnet": {
        "tiny": ({"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "groups_width": 8}, 32),
        "small": (
            {"embedding_size": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 2, 1], "groups_width": 8},
            64,
        ),
        "base": (  # RegNetX-400MF
            {"embedding_size": 32, "hidden_sizes": [32, 64, 160, 384], "depths": [1, 2, 7, 12], "groups_width": 16},
            96,
        ),
        "large": (  # RegNetY-1.6GF (squeeze-excitation blocks)
            {
                "embedding_size": 32,
                "hidden_sizes": [48, 120, 336, 888],
                "depths": [2, 6, 17, 2],
                "groups_width": 24,
                "layer_type": "y",
            },
            96,
        ),
    },
    "vit": {
        "tiny": (
            {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "patch_size": 8,
            },
            32,
        ),
        "small": (
            {
                "hidden_size": 64,
                "num_hidden_layers": 4,
                "num_attention_heads": 4,
                "intermediate_size": 256,
                "patch_size": 8,
            },
            64,
        ),
        "base": (
            {
                "hidden_size": 192,
                "num_hidden_layers": 12,
                "num_attention_heads": 3,
                "intermediate_size": 768,
                "patch_size": 16,
            },
            96,
        ),
        "large": (
            {
                "hidden_size": 384,
                "num_hidden_layers": 12,
                "num_attention_heads": 6,
                "intermediate_size": 1536,
                "patch_size": 16,
            },
            128,
        ),
    },
    "bert": {
        "tiny": ({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}, 16),
        "small": ({"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512}, 64),
        "base": (
            {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
            128,
        ),
        "large": (
            {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
            128,
        ),
    },
    "gpt2": {
        "tiny": ({"n_embd": 32, "n_layer": 2, "n_head": 2}, 16),
        "small": ({"n_embd": 128, "n_layer": 4, "n_head": 4}, 64),
        "base": ({"n_embd": 768, "n_layer": 12, "n_head": 12}, 128),
        "large": ({"n_embd": 1024, "n_layer": 24, "n_head": 16}, 128),
    },
    "llama": {
        "tiny": (
            {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "intermediate_size": 64,
            },
            16,
        ),
        "small": (
            {
                "hidden_size": 128,
                "num_hidden_layers": 4,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "intermediate_size": 344,
            },
            64,
        ),
        "base": (
            {
                "hidden_size": 512,
                "num_hidden_layers": 8,
                "num_attention_heads": 8,
                "num_key_value_heads": 4,
                "intermediate_size": 1376,
            },
            128,
        ),
        "large": (
            {
                "hidden_size": 1024,
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "intermediate_size": 2752,
            },
            128,
        ),
    },
    "mobilevit": {  # small / base / large: MobileViT-XXS / XS / S widths
        "tiny": (
            {"hidden_sizes": [16, 24, 32], "neck_hidden_sizes": [8, 16, 24, 24, 32, 40, 64], "num_attention_heads": 2},
            32,
        ),
        "small": ({"hidden_sizes": [64, 80, 96], "neck_hidden_sizes": [16, 16, 24, 48, 64, 80, 320]}, 64),
        "base": ({"hidden_sizes": [96, 120, 144], "neck_hidden_sizes": [16, 32, 48, 64, 80, 96, 384]}, 96),
        "large": ({"hidden_sizes": [144, 192, 240], "neck_hidden_sizes": [16, 32, 64, 96, 128, 160, 640]}, 128),
    },
    "swin": {  # base / large: Swin-T / Swin-S depths and widths at a small input (window 3)
        "tiny": ({"embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2], "window_size": 4}, 32),
        "small": ({"embed_dim": 32, "depths": [1, 1, 2], "num_heads": [1, 2, 4], "window_size": 4}, 64),
        "base": ({"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 3}, 96),
        "large": ({"embed_dim": 96, "depths": [2, 2, 18, 2], "num_heads": [3, 6, 12, 24], "window_size": 3}, 96),
    },
    "qwen2": {
        "tiny": (
            {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "intermediate_size": 64,
            },
            16,
        ),
        "small": (
            {
                "hidden_size": 128,
                "num_hidden_layers": 4,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "intermediate_size": 344,
            },
            64,
        ),
        "base": (
            {
                "hidden_size": 512,
                "num_hidden_layers": 8,
                "num_attention_heads": 8,
                "num_key_value_heads": 2,
                "intermediate_size": 1376,
            },
            128,
        ),
        "large": (
            {
                "hidden_size": 896,
                "num_hidden_layers": 24,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "intermediate_size": 4864,
            },
            128,
        ),
    },
    "t5": {  # the encoder stack; base / large: T5-small / T5-base
        "tiny": ({"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2}, 16),
        "small": ({"d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 4, "num_heads": 4}, 64),
        "base": ({"d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8}, 128),
        "large": ({"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12}, 128),
    },
}

#: family -> (config class, model class) names in ``transformers``.
_REAL_CLASSES = {
    "resnet": ("ResNetConfig", "ResNetModel"),
    "mobilenetv2": ("MobileNetV2Config", "MobileNetV2Model"),
    "convnext": ("ConvNextConfig", "ConvNextModel"),
    "efficientnet": ("EfficientNetConfig", "EfficientNetModel"),
    "regnet": ("RegNetConfig", "RegNetModel"),
    "vit": ("ViTConfig", "ViTModel"),
    "bert": ("BertConfig", "BertModel"),
    "gpt2": ("GPT2Config", "GPT2Model"),
    "llama": ("LlamaConfig", "LlamaModel"),
    "mobilevit": ("MobileViTConfig", "MobileViTModel"),
    "swin": ("SwinConfig", "SwinModel"),
    "qwen2": ("Qwen2Config", "Qwen2Model"),
    "t5": ("T5Config", "T5EncoderModel"),
}


@dataclass(frozen=True)
class RealSpec:
    """A real architecture (Hugging Face ``transformers`` code) at one size, with random weights.

    Plugs into :func:`opgraph.perf.collect.collect_layout` like :class:`ZooSpec` (``name``, ``family``, ``seed``,
    ``scale``, ``build()``).

    Attributes:
        family: One of :data:`REAL_FAMILIES` or :data:`REAL_EXTRA_FAMILIES`.
        size: One of :data:`REAL_SIZES`.
        seed: Seed of the random weights and inputs.
        scale: Multiplies the input size (image side or sequence length).
        batch: Batch size of the example input.
    """

    family: str
    size: str = "tiny"
    seed: int = 0
    scale: float = 1.0
    batch: int = 1

    @property
    def name(self) -> str:
        """File-safe unique name, e.g. ``hf_resnet_base``."""
        sc = "" if self.scale == 1.0 else f"_x{self.scale:g}".replace(".", "p")
        b = "" if self.batch == 1 else f"_b{self.batch}"
        return f"hf_{self.family}_{self.size}{sc}{b}"

    @property
    def convolutional(self) -> bool:
        """Whether the model has a layout space (convolutions)."""
        return self.family in REAL_CNN_FAMILIES or self.family == "mobilevit"

    @property
    def input_size(self) -> int:
        """Image side (pixels) or sequence length (tokens) of the example input."""
        return max(8, int(round(_REAL_CONFIGS[self.family][self.size][1] * self.scale)))

    def build(self) -> tuple[Any, tuple[Any, ...]]:
        """Return ``(module, example_inputs)``: the model in eval mode, random weights (nothing downloaded).

        Raises:
            PerfError: Unknown family/size, or ``transformers`` is missing (names the ``models`` extra).
        """
        import torch

        from opgraph.perf.errors import PerfError, require

        if self.family not in REAL_FAMILIES + REAL_EXTRA_FAMILIES or self.size not in REAL_SIZES:
            raise PerfError(
                f"unknown real model {self.family!r}/{self.size!r}; families {REAL_FAMILIES + REAL_EXTRA_FAMILIES}, "
                f"sizes {REAL_SIZES}"
            )
        transformers = require("transformers", "models")
        cfg_name, model_name = _REAL_CLASSES[self.family]
        kwargs, _ = _REAL_CONFIGS[self.family][self.size]
        kwargs = dict(kwargs)
        n = self.input_size
        text = self.family not in _IMAGE_FAMILIES
        if text:
            kwargs.update(vocab_size=_VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0)
            positions = "n_positions" if self.family == "gpt2" else "max_position_embeddings"
            kwargs[positions] = max(n, 64)
        else:
            kwargs["image_size"] = n
        if self.family == "efficientnet":  # the top BatchNorm must match the top conv's rounded width
            kwargs["hidden_dim"] = _round_filters(1280, float(kwargs["width_coefficient"]))
        if self.family in ("gpt2", "llama", "qwen2", "t5"):
            kwargs["use_cache"] = False  # a DynamicCache output cannot be exported
        config = getattr(transformers, cfg_name)(**kwargs)
        torch.manual_seed(self.seed % (2**31))
        model = getattr(transformers, model_name)(config).eval()
        gen = torch.Generator().manual_seed(self.seed % (2**31))
        if text:
            example: tuple[Any, ...] = (torch.randint(1, _VOCAB, (self.batch, n), generator=gen),)
        else:
            example = (torch.randn(self.batch, 3, n, n, generator=gen),)
        return model, example


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding (a multiple of ``divisor``, at most 10% below ``channels * width``)."""
    c = channels * width
    new = max(divisor, int(c + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * c else new)


def real_specs(
    families: tuple[str, ...] = REAL_FAMILIES,
    sizes: tuple[str, ...] = ("tiny",),
    *,
    scales: tuple[float, ...] = (1.0,),
    batches: tuple[int, ...] = (1,),
    seed: int = 0,
) -> list[RealSpec]:
    """Every (family, size, scale, batch) combination as a :class:`RealSpec` (convolutional ones: layout space).

    5 convolutional families x 4 sizes x 5 scales x 2 batches gives 200 distinct layout graphs.

    Args:
        families: Families (default: the nine of :data:`REAL_FAMILIES`; :data:`REAL_EXTRA_FAMILIES` on request).
        sizes: Sizes from :data:`REAL_SIZES`.
        scales: Input size scales (several input sizes per architecture).
        batches: Batch sizes of the example input.
        seed: Seed of weights and inputs.

    Returns:
        Specs with distinct names, family-major.
    """
    from opgraph.perf.errors import PerfError

    known = REAL_FAMILIES + REAL_EXTRA_FAMILIES
    bad = [f for f in families if f not in known] + [s for s in sizes if s not in REAL_SIZES]
    if bad:
        raise PerfError(f"unknown real families/sizes {bad}; choose from {known} and {REAL_SIZES}")
    return [RealSpec(f, s, seed, sc, b) for f in families for s in sizes for sc in scales for b in batches]
