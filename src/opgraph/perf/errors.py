"""Errors of :mod:`opgraph.perf`; each message names the argument or file and the fix."""

from __future__ import annotations

from opgraph.errors import OpgraphError


class PerfError(OpgraphError):
    """Base of every user-facing error raised by :mod:`opgraph.perf`."""


class SchemaError(PerfError):
    """An npz file does not follow the TpuGraphs schema (missing key, wrong shape or dtype)."""


class MissingDependencyError(PerfError):
    """An optional dependency (TVM, PyTorch Geometric, LightGBM) is not installed."""


class CheckpointError(PerfError):
    """A model checkpoint cannot be used (other feature version, other collection kind, corrupt file)."""


class MeasurementError(PerfError):
    """A configuration could not be measured (every configuration failed, or the model does not run)."""


def require(module: str, extra: str) -> object:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra to install.

    Args:
        module: Importable module name, e.g. ``"tvm"``.
        extra: The opgraph extra that provides it, e.g. ``"tvm"``.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with `pip install 'opgraph[{extra}]'`"
        ) from exc
