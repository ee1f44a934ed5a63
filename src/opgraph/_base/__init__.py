"""The bottom layer of opgraph, below :mod:`opgraph.graph`: errors, safe file I/O, strict JSON, provenance.

Everything here imports nothing else of opgraph and only the standard library at import time (torch and numpy
are imported inside the functions that need them). The graph core, the systems, the report and the CLI all
build on it, so each of these mechanisms exists once.
"""

from opgraph._base.errors import MissingExtraError, OpgraphError, UnsafeFileError

__all__ = ["MissingExtraError", "OpgraphError", "UnsafeFileError"]
