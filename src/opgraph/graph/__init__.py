"""The opgraph core: graphs as data, one interpreter, builders (tracer, torch.export and torch.fx importers) and algorithms.

Imports nothing else of opgraph. Heavy dependencies (torch) are imported inside the functions that need them.
"""

from opgraph.graph.arrays import vectorized
from opgraph.graph.errors import GraphError, InterpretError, OpgraphError, TraceError
from opgraph.graph.export_import import export_program, from_export, from_module
from opgraph.graph.fx_import import from_fx
from opgraph.graph.interpreter import interpret
from opgraph.graph.ir import Graph, Node
from opgraph.graph.ops import HLO_OPCODES, OPS, OpInfo, numpy_rules, op_info, register_op
from opgraph.graph.tracer import GraphBuilder, Proxy, ProxyArray, trace

__all__ = [
    "HLO_OPCODES",
    "OPS",
    "Graph",
    "GraphBuilder",
    "GraphError",
    "InterpretError",
    "Node",
    "OpInfo",
    "OpgraphError",
    "Proxy",
    "ProxyArray",
    "TraceError",
    "export_program",
    "from_export",
    "from_fx",
    "from_module",
    "interpret",
    "numpy_rules",
    "op_info",
    "register_op",
    "trace",
    "vectorized",
]
