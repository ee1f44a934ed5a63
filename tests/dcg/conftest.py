"""Shared fixtures of the dcg tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opgraph.dcg import switches


@pytest.fixture
def point_mass_answers() -> Iterator[None]:
    """The box-linear mixture answer off: for tests of the grid's point-mass answer or of refinement round counts
    (the mixture's tighter bound meets a target in fewer rounds)."""
    with switches.scope({"box_linear": False}):
        yield
