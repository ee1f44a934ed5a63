"""The pieces of a report page: figures, tables and sections that each system contributes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """A PNG figure.

    Attributes:
        name: File-name stem, unique within its section (``"cdf"``).
        png: The PNG bytes.
        caption: One sentence saying what the figure shows.
    """

    name: str
    png: bytes
    caption: str = ""

    @classmethod
    def from_matplotlib(cls, fig: Any, name: str, caption: str = "", *, dpi: int = 100) -> Figure:
        """Render a matplotlib Figure to PNG (and close it)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return cls(name, buf.getvalue(), caption)


@dataclass(frozen=True)
class Table:
    """A table of numbers or short strings.

    Attributes:
        columns: Column headers (put units in them: ``"time_s"``).
        rows: One list per row, as long as ``columns``.
        caption: What the table shows.
    """

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def __post_init__(self) -> None:
        for k, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"Table row {k} has {len(row)} cells but there are {len(self.columns)} columns")


@dataclass(frozen=True)
class Section:
    """One system's part of a report page.

    Attributes:
        id: Anchor id (``"dcg"``), unique within a page.
        title: Heading.
        summary: Short text; blank lines separate paragraphs.
        figures: Figures, shown in order.
        tables: Tables, shown in order.
        data: The numbers behind the section (saved to ``report.json``).
        notes: Caveats the reader must see (e.g. "energy is modelled, not measured").
        command: The shell command that reproduces the section (shown on the page).
        links: Label -> address (a URL, a ``file://`` URI or a repository path) of related pages, e.g. the
            system's documentation and benchmark page.
    """

    id: str
    title: str
    summary: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    command: str = ""
    links: dict[str, str] = field(default_factory=dict)
