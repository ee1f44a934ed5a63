"""opgraph: one computational-graph core, four systems built on it.

* :mod:`opgraph.dcg`: distributional computational graphs with certified Wasserstein-1 bounds.
* :mod:`opgraph.perf`: TpuGraphs-style performance datasets and a learned cost model.
* :mod:`opgraph.energy`: Magneton-style differential energy debugging.
* :mod:`opgraph.ffa`: Feedback-Feedforward Alignment training.

The systems are imported lazily (``from opgraph import dcg``) so that ``import opgraph`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
