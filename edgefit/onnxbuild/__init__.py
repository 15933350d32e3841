"""Build runnable Llama-shaped ONNX decoders with seeded random weights from any ModelSpec.

``build_model(spec, precision, *, out=None, layers=None, seed=0, block_size=32) -> BuiltModel``
(docs/CONTRACTS.md). Graph in ``graph.py``, weights, quantization and the streaming writer in ``weights.py``.
"""

from __future__ import annotations

from edgefit.onnxbuild.build import (
    BUILD_PRECISIONS,
    BUILDER_VERSION,
    RUNTIME_NOTES,
    BuiltModel,
    build_model,
    check_buildable,
    default_path,
    read_weights,
    spec_hash,
)

__all__ = [
    "BUILDER_VERSION",
    "BUILD_PRECISIONS",
    "RUNTIME_NOTES",
    "BuiltModel",
    "build_model",
    "check_buildable",
    "default_path",
    "read_weights",
    "spec_hash",
]
