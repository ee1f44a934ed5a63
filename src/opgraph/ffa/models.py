"""The paper's encoders (F pathways) with a width multiplier: ``mlp``, ``asym_resnet10``, ``asym_resnet18``.

Each function returns an :class:`Encoder`: a ``body`` (image -> latent) that :func:`opgraph.ffa.mirror` turns into
the feedback network B, and a parameter-free ``head`` (latent -> class logits). Bodies use plain ``torch.nn``
layers (no biases in conv layers; BatchNorm with ``track_running_stats=False``, i.e. batch statistics also at test
time, affine, as in the authors' runs); :func:`~opgraph.ffa.mirror` swaps in the feedback layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from opgraph.ffa.errors import FFAError

__all__ = ["HEADS", "Encoder", "asym_resnet10", "asym_resnet18", "build", "mlp"]

HEADS = ("identity", "avgpool", "groupmax")


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, affine=True, track_running_stats=False)


class Encoder(nn.Module):
    """An F pathway: ``body`` maps images to the latent; ``head`` maps the latent to class logits.

    Args:
        body: Any module made of Linear/Conv2d/BatchNorm/ReLU/Flatten layers and additions (torch.fx-traceable).
        head: ``identity`` (the latent are the logits), ``avgpool`` (global average pool of a ``(N, classes, H, W)``
            latent) or ``groupmax`` (channel max-pool in ``n_classes`` groups, then average pool; ResNet-18).
        input_shape: Image shape ``(C, H, W)``.
        n_classes: Number of classes.
        name: Model name, recorded in checkpoints.
        config: Keyword arguments that rebuild the model with :func:`build`.
    """

    def __init__(
        self,
        body: nn.Module,
        *,
        head: str,
        input_shape: Sequence[int],
        n_classes: int,
        name: str = "custom",
        config: dict | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise FFAError(f"head {head!r} is unknown; use one of {', '.join(HEADS)}")
        self.body = body
        self.head = head
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_classes = int(n_classes)
        self.name = name
        self.config = dict(config or {})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The latent (the input of the feedback network)."""
        return self.body(x)  # type: ignore[no-any-return]

    def classify(self, latent: torch.Tensor) -> torch.Tensor:
        """Class logits from a latent."""
        if self.head == "identity":
            return latent.flatten(1)
        if self.head == "avgpool":
            return latent.mean(dim=(2, 3))
        n, c = latent.shape[:2]
        g = c // self.n_classes
        z = latent[:, : g * self.n_classes].reshape(n, self.n_classes, g, *latent.shape[2:])
        return z.amax(dim=2).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.classify(self.features(x))

    def extra_repr(self) -> str:  # noqa: D102
        return f"name={self.name!r}, head={self.head!r}, input_shape={self.input_shape}, n_classes={self.n_classes}"


def mlp(
    in_features: int = 1024,
    hidden: Sequence[int] = (256, 256),
    n_classes: int = 10,
    *,
    input_shape: Sequence[int] | None = None,
    bias: bool = True,
) -> Encoder:
    """The paper's fully connected model (``FullyConnectedF``: 1024-256-256-10; the latent are the logits).

    Args:
        in_features: Number of input pixels (1024 = 32x32 for MNIST, 64 for scikit-learn digits).
        hidden: Hidden layer widths.
        n_classes: Output width (the latent, read directly as logits).
        input_shape: Image shape ``(C, H, W)``; default ``(1, s, s)`` with ``s = sqrt(in_features)``.
        bias: Whether the Linear layers have biases.
    """
    if input_shape is None:
        side = int(round(in_features**0.5))
        if side * side != in_features:
            raise FFAError(f"in_features={in_features} is not a square image; pass input_shape=(C, H, W)")
        input_shape = (1, side, side)
    if int(torch.tensor(input_shape).prod()) != in_features:
        raise FFAError(f"input_shape={tuple(input_shape)} does not have in_features={in_features} pixels")
    layers: list[nn.Module] = [nn.Flatten(1)]
    prev = in_features
    for h in hidden:
        layers += [nn.Linear(prev, int(h), bias=bias), nn.ReLU()]
        prev = int(h)
    layers.append(nn.Linear(prev, n_classes, bias=bias))
    cfg = {
        "in_features": in_features,
        "hidden": list(hidden),
        "n_classes": n_classes,
        "input_shape": list(input_shape),
        "bias": bias,
    }
    return Encoder(
        nn.Sequential(*layers), head="identity", input_shape=input_shape, n_classes=n_classes, name="mlp", config=cfg
    )


class AsymResLNet10Body(nn.Module):
    """The MNIST model of the paper (``AsymResLNet10F``): 32x32 input, 10x8x8 latent (``n_classes`` channels).

    conv1 7x7/2 -> two residual stages of four 3x3 convolutions each (the first stage widens c -> 2c with a 1x1
    projection + BN shortcut, the second starts with stride 2 and ends in ``n_classes`` channels with a 1x1/2
    projection without BN), ReLU latent. ``width`` is the base channel count c (64 in the paper).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        c = width
        self.conv1 = nn.Conv2d(in_channels, c, 7, stride=2, padding=3, bias=False)
        self.bn1 = _bn(c)
        self.conv11, self.bn11 = nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c)
        self.conv12, self.bn12 = nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c)
        self.conv21, self.bn21 = nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c)
        self.conv22, self.bn22 = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), _bn(2 * c)
        self.downsample1, self.bn23 = nn.Conv2d(c, 2 * c, 1, bias=False), _bn(2 * c)
        self.conv31, self.bn31 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1, bias=False), _bn(2 * c)
        self.conv32, self.bn32 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False), _bn(2 * c)
        self.conv41, self.bn41 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False), _bn(2 * c)
        self.conv42, self.bn42 = nn.Conv2d(2 * c, n_classes, 3, padding=1, bias=False), _bn(n_classes)
        self.downsample2 = nn.Conv2d(2 * c, n_classes, 1, stride=2, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        r = self.relu
        x = r(self.bn1(self.conv1(x)))
        identity = x
        x = r(self.bn11(self.conv11(x)))
        x = r(self.bn12(self.conv12(x)))
        x = r(self.bn21(self.conv21(x)))
        x = self.bn22(self.conv22(x))
        x = r(x + self.bn23(self.downsample1(identity)))
        identity = x
        x = r(self.bn31(self.conv31(x)))
        x = r(self.bn32(self.conv32(x)))
        x = r(self.bn41(self.conv41(x)))
        x = self.bn42(self.conv42(x))
        return r(x + self.downsample2(identity))


def asym_resnet10(in_channels: int = 1, n_classes: int = 10, width: int = 64, *, image_size: int = 32) -> Encoder:
    """AsymResLNet10 (the paper's MNIST model; ``width=64`` is paper size, 650,816 weights per pathway).

    Args:
        in_channels: Image channels (1 for MNIST).
        n_classes: Classes = latent channels; the logits are the latent's global average.
        width: Base channel count (64 in the paper; 8-16 for CPU runs).
        image_size: Input side in pixels (32 in the paper: MNIST is resized from 28).
    """
    if image_size % 4:
        raise FFAError(f"image_size={image_size} must be a multiple of 4 (two stride-2 stages)")
    body = AsymResLNet10Body(in_channels, n_classes, width)
    cfg = {"in_channels": in_channels, "n_classes": n_classes, "width": width, "image_size": image_size}
    return Encoder(
        body,
        head="avgpool",
        input_shape=(in_channels, image_size, image_size),
        n_classes=n_classes,
        name="asym_resnet10",
        config=cfg,
    )


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions, projection shortcut when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), _bn(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False), _bn(cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _bn(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class AsymResNet18Body(nn.Module):
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool, no FC); latent = layer4 output ``8w x 4 x 4``."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        w = width
        self.conv1, self.bn1 = nn.Conv2d(in_channels, w, 3, padding=1, bias=False), _bn(w)
        self.relu = nn.ReLU()
        blocks = []
        cin = w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            stride = 1 if i == 0 else 2
            blocks.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # type: ignore[no-any-return]


def asym_resnet18(in_channels: int = 3, n_classes: int = 10, width: int = 64, *, image_size: int = 32) -> Encoder:
    """The paper's CIFAR-10 model (``asymresnet18``): logits = channel max-pool in ``n_classes`` groups + avg pool.

    Args:
        in_channels: Image channels (3 for CIFAR-10).
        n_classes: Classes (``8 * width`` must be at least ``n_classes``).
        width: Base width (64 in the paper).
        image_size: Input side in pixels (multiple of 8).
    """
    if 8 * width < n_classes:
        raise FFAError(f"width={width} gives {8 * width} latent channels, fewer than n_classes={n_classes}")
    if image_size % 8:
        raise FFAError(f"image_size={image_size} must be a multiple of 8 (three stride-2 stages)")
    cfg = {"in_channels": in_channels, "n_classes": n_classes, "width": width, "image_size": image_size}
    return Encoder(
        AsymResNet18Body(in_channels, width),
        head="groupmax",
        input_shape=(in_channels, image_size, image_size),
        n_classes=n_classes,
        name="asym_resnet18",
        config=cfg,
    )


_BUILDERS = {"mlp": mlp, "asym_resnet10": asym_resnet10, "asym_resnet18": asym_resnet18}


def build(name: str, **kwargs: object) -> Encoder:
    """Build a model by name (``mlp``, ``asym_resnet10``, ``asym_resnet18``) from its config keyword arguments."""
    if name not in _BUILDERS:
        raise FFAError(f"model {name!r} is unknown; use one of {', '.join(_BUILDERS)}")
    return _BUILDERS[name](**kwargs)  # type: ignore[operator, no-any-return]
