"""Errors of :mod:`opgraph.perf`; each message names the argument or file and the fix."""

from __future__ import annotations

from opgraph.errors import MissingExtraError, OpgraphError, require

__all__ = [
    "CheckpointError",
    "MeasurementError",
    "MissingDependencyError",
    "OpgraphError",
    "PerfError",
    "SchemaError",
    "require",
]


class PerfError(OpgraphError):
    """Base of every user-facing error raised by :mod:`opgraph.perf`."""


class SchemaError(PerfError):
    """An npz file does not follow the TpuGraphs schema (missing key, wrong shape or dtype)."""


class MissingDependencyError(PerfError, MissingExtraError):
    """An optional dependency (TVM, PyTorch Geometric, LightGBM) is not installed.

    Missing extras in general are raised by the shared :func:`opgraph.errors.require` (re-exported here) as
    :class:`~opgraph.errors.MissingExtraError`; this subclass is what :mod:`opgraph.perf.tile` raises for TVM.
    """


class CheckpointError(PerfError):
    """A model checkpoint cannot be used (other feature version, other collection kind, corrupt file)."""


class MeasurementError(PerfError):
    """A configuration could not be measured (every configuration failed, or the model does not run)."""
