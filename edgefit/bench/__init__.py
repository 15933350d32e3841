"""Measurement on this machine: one worker subprocess per model, raw samples stored as Measurements.

``run_ladder`` measures the quick/full ladder of built decoders; ``bench_file`` measures a user's .onnx files.
The runner seam (``runner.Runner``, ``OrtRunner``, ``ScriptedRunner``) lets the orchestration be tested
without onnxruntime.

The names below load lazily: the worker (``python -I -m edgefit.bench.worker``) imports this package first, and
must not pull in the campaign's imports (onnx, the builder), whose memory would count in every model's RSS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgefit.bench.campaign import BenchSummary, ModelOutcome, bench_file, default_threads, run_ladder

__all__ = ["BenchSummary", "ModelOutcome", "bench_file", "default_threads", "run_ladder"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgefit.bench import campaign

        return getattr(campaign, name)
    raise AttributeError(f"module 'edgefit.bench' has no attribute {name!r}")
