"""Atomic file writes, kept importable here for older code: they live in :mod:`opgraph._base.fileio`."""

from __future__ import annotations

from opgraph._base.fileio import atomic_dir, atomic_open, atomic_write

__all__ = ["atomic_dir", "atomic_open", "atomic_write"]
