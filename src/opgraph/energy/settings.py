"""Snapshot, diff and apply the settings that change which kernels PyTorch runs.

A snapshot is a flat ``dict[str, JSON value]``. Keys with a ``knob`` entry in :data:`KNOBS` can be applied to the
running process (used by config bisection); the rest (environment variables, versions) are reported only.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "CUDA_", "TORCH_", "VLLM_", "OPENBLAS_", "DNNL_", "ONEDNN_")


@dataclass(frozen=True)
class Knob:
    """One setting that can be read and applied in-process.

    Attributes:
        name: Key in the snapshot (e.g. ``"num_threads"``).
        get: Reads the current value (JSON-able).
        set: Applies a value read by ``get`` (``None`` when the setting cannot be changed at run time).
    """

    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None] | None


def _dtype_name(dt: Any) -> str:
    return str(dt).replace("torch.", "")


def _set_default_dtype(value: str) -> None:
    import torch

    torch.set_default_dtype(getattr(torch, value))


def _sdpa_knobs() -> list[Knob]:
    import torch

    out = []
    for flag in ("flash", "mem_efficient", "math", "cudnn"):
        getter = getattr(torch.backends.cuda, f"{flag}_sdp_enabled", None)
        setter = getattr(torch.backends.cuda, f"enable_{flag}_sdp", None)
        if getter is None or setter is None:
            continue
        out.append(Knob(f"sdpa.{flag}", getter, setter))
    return out


def _attr_knob(name: str, obj: Any, attr: str) -> Knob:
    def get() -> Any:
        return getattr(obj, attr)

    def put(value: Any) -> None:
        setattr(obj, attr, value)

    return Knob(name, get, put)


def _autocast_knob(device: str) -> Knob:
    import torch

    def get() -> Any:
        try:
            on = torch.is_autocast_enabled(device)
            dt = torch.get_autocast_dtype(device)
        except (TypeError, RuntimeError, AttributeError):
            return None
        return f"{bool(on)}:{_dtype_name(dt)}"

    return Knob(f"autocast.{device}", get, None)


def knobs() -> list[Knob]:
    """Return the settings this module can read (and where possible apply), in a fixed order."""
    import torch

    out = [
        Knob("num_threads", torch.get_num_threads, torch.set_num_threads),
        Knob("num_interop_threads", torch.get_num_interop_threads, None),
        Knob("default_dtype", lambda: _dtype_name(torch.get_default_dtype()), _set_default_dtype),
        Knob(
            "float32_matmul_precision",
            torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision,
        ),
        _attr_knob("cuda.matmul.allow_tf32", torch.backends.cuda.matmul, "allow_tf32"),
        _attr_knob(
            "cuda.matmul.allow_fp16_reduced_precision_reduction",
            torch.backends.cuda.matmul,
            "allow_fp16_reduced_precision_reduction",
        ),
        _attr_knob("cudnn.allow_tf32", torch.backends.cudnn, "allow_tf32"),
        _attr_knob("cudnn.benchmark", torch.backends.cudnn, "benchmark"),
        _attr_knob("cudnn.deterministic", torch.backends.cudnn, "deterministic"),
        _attr_knob("cudnn.enabled", torch.backends.cudnn, "enabled"),
        _attr_knob("mkldnn.enabled", torch.backends.mkldnn, "enabled"),
        Knob("grad_enabled", torch.is_grad_enabled, torch.set_grad_enabled),
        Knob("inference_mode", torch.is_inference_mode_enabled, None),
        Knob("deterministic_algorithms", torch.are_deterministic_algorithms_enabled, None),
        _autocast_knob("cpu"),
        _autocast_knob("cuda"),
    ]
    out.extend(_sdpa_knobs())
    return out


def _knob_map() -> dict[str, Knob]:
    return {k.name: k for k in knobs()}


def snapshot() -> dict[str, Any]:
    """Read every knob, the relevant environment variables and library versions.

    Returns:
        A flat JSON-able dict. Environment variables appear as ``"env.NAME"``, versions as ``"version.pkg"``.
    """
    import torch

    snap: dict[str, Any] = {}
    for k in knobs():
        try:
            value = k.get()
        except (RuntimeError, AttributeError, TypeError):  # a backend missing in this build
            continue
        snap[k.name] = value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
    for key in sorted(os.environ):
        if key.startswith(ENV_PREFIXES):
            snap[f"env.{key}"] = os.environ[key]
    snap["version.torch"] = torch.__version__
    snap["version.python"] = platform.python_version()
    snap["cuda.available"] = bool(torch.cuda.is_available())
    if torch.cuda.is_available():
        snap["cuda.device"] = torch.cuda.get_device_name(0)
        snap["version.cuda"] = str(torch.version.cuda)
    return snap


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Return ``{key: (value_a, value_b)}`` for every key whose values differ (missing keys read as None)."""
    out = {}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out[key] = (a.get(key), b.get(key))
    return out


def applicable(key: str) -> bool:
    """Whether ``key`` names a knob that :func:`applied` can change in this process."""
    knob = _knob_map().get(key)
    return knob is not None and knob.set is not None


@contextlib.contextmanager
def applied(values: Mapping[str, Any]) -> Iterator[None]:
    """Apply the applicable knobs in ``values`` for the duration of the block, then restore them.

    Keys that cannot be applied (environment variables, versions, unknown keys) are ignored.
    """
    table = _knob_map()
    saved: list[tuple[Knob, Any]] = []
    try:
        for key, value in values.items():
            knob = table.get(key)
            if knob is None or knob.set is None:
                continue
            current = knob.get()
            if current == value:
                continue
            saved.append((knob, current))
            knob.set(value)
        yield
    finally:
        for knob, value in reversed(saved):
            knob.set(value)
