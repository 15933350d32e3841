"""Measurement on this machine: one worker subprocess per model, raw samples stored as Measurements.

``run_ladder`` measures the quick/full ladder of built decoders; ``bench_file`` measures a user's .onnx files.
The runner seam (``runner.Runner``, ``OrtRunner``, ``ScriptedRunner``) lets the orchestration be tested
without onnxruntime.
"""

from __future__ import annotations

from edgefit.bench.campaign import BenchSummary, ModelOutcome, bench_file, default_threads, run_ladder

__all__ = ["BenchSummary", "ModelOutcome", "bench_file", "default_threads", "run_ladder"]
