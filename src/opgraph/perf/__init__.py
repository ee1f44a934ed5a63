"""TpuGraphs-style performance datasets, a learned cost model that ranks configurations, and a tuner.

Submodules (heavy dependencies load only when used):

* :mod:`~opgraph.perf.tpugraphs`: read/write the TpuGraphs npz schema, the collection tree, :class:`GraphRecord`.
* :mod:`~opgraph.perf.metrics`: Kendall tau-b, slowdown@K, ordered-pair accuracy, Kaggle tile score.
* :mod:`~opgraph.perf.zoo`: seeded PyTorch model generator; :mod:`~opgraph.perf.features`: the 140 columns.
* :mod:`~opgraph.perf.collect` (layout, PyTorch) and :mod:`~opgraph.perf.tile` (TVM): build datasets here.
* :mod:`~opgraph.perf.model`: GraphSAGE cost model; :mod:`~opgraph.perf.baselines`: random, default,
  analytical, LightGBM; :mod:`~opgraph.perf.evaluate`; :mod:`~opgraph.perf.tune`.
"""

from opgraph.perf.errors import CheckpointError, MeasurementError, MissingDependencyError, PerfError, SchemaError
from opgraph.perf.metrics import kaggle_tile_score, kendall_tau, ordered_pair_accuracy, slowdown_at_k
from opgraph.perf.tpugraphs import GraphRecord, TpuGraphsDataset, load_graph, load_records, save_graph

__all__ = [
    "CheckpointError",
    "GraphRecord",
    "MeasurementError",
    "MissingDependencyError",
    "PerfError",
    "SchemaError",
    "TpuGraphsDataset",
    "kaggle_tile_score",
    "kendall_tau",
    "load_graph",
    "load_records",
    "ordered_pair_accuracy",
    "save_graph",
    "slowdown_at_k",
]
