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
