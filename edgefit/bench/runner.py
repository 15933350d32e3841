"""The runner seam: what the measurement loop drives.

``OrtRunner`` runs a real onnxruntime session (CPU provider, intra-op threads set, all graph optimizations,
weight prepacking on); ``ScriptedRunner`` returns given latencies so the orchestration, the stopping rule and
the warnings are tested in milliseconds. The measurement loop (``edgefit.bench.loop``) only sees this:

    runner.load() -> load_s
    runner.prepare(phase, prompt_tokens, context_tokens)   # untimed: build feeds, pre-fill the KV cache
    runner.step_s() -> seconds of one timed call            # repeated: warmups, then samples
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgefit.bench.feeds import (
    FeedSpec,
    failure_hint,
    image_size_alternatives,
    past_dim_index,
    plan_inputs,
    synthesize,
)
from edgefit.bench.measurement import Phase
from edgefit.bench.modelinfo import ModelFileInfo
from edgefit.errors import BenchError

PROVIDER = "CPUExecutionProvider"


class Runner(Protocol):
    @property
    def is_decoder(self) -> bool: ...

    def load(self) -> float:
        """Create the session; return seconds it took."""
        ...

    def prepare(self, phase: Phase, prompt_tokens: int, context_tokens: int) -> None:
        """Get ready to time ``phase`` (untimed)."""
        ...

    def step_s(self) -> float:
        """One timed call of the prepared phase, in seconds."""
        ...

    def close(self) -> None: ...


def session_options(threads: int) -> Any:
    """The settings every edgefit measurement uses (and the bare-loop benchmark copies)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Prepacking is the default; set it explicitly: without it int8 runs ~4x and int4 ~60x slower.
    so.add_session_config_entry("session.disable_prepacking", "0")
    so.log_severity_level = 3
    return so


class OrtRunner:
    """A real onnxruntime session on the CPU provider, fed with synthesized inputs."""

    def __init__(
        self,
        path: Path,
        info: ModelFileInfo,
        threads: int,
        feed_spec: FeedSpec | None = None,
        *,
        kv_fill_tokens: int = 0,
        kv_fill: str = "prefill",
    ) -> None:
        """``kv_fill_tokens``: the deepest KV depth the plan will ask for; one prefill of that many tokens fills
        the cache once and shallower depths take its leading positions (exact for a causal decoder: position
        i's keys and values depend only on tokens <= i). ``kv_fill="synthetic"`` fills the cache with noise
        instead (same shapes, same attention work, no prefill cost)."""
        if kv_fill not in ("prefill", "synthetic"):
            raise ValueError(f"kv_fill must be 'prefill' or 'synthetic', found {kv_fill!r}")
        self.path = path
        self.info = info
        self.threads = threads
        self.feed_spec = feed_spec or FeedSpec()
        self.kv_fill_tokens = kv_fill_tokens
        self.kv_fill = kv_fill
        self._session: Any = None
        self._feeds: dict[str, np.ndarray] = {}
        self._kv: dict[str, np.ndarray] = {}  # present outputs of the fill prefill, by past input name
        self._kv_depth = 0
        self.adapted: frozenset[str] = frozenset()  # inputs whose default image size failed; another size ran

    @property
    def is_decoder(self) -> bool:
        return self.info.is_decoder

    def load(self) -> float:
        import onnxruntime as ort

        so = session_options(self.threads)
        t0 = time.perf_counter()
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=so, providers=[PROVIDER])
        except Exception as exc:
            raise BenchError(f"{self.path}: onnxruntime could not load it: {str(exc).splitlines()[0]}") from None
        return time.perf_counter() - t0

    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        try:
            return list(self._session.run(None, dict(feeds)))
        except Exception as exc:
            raise self._failure(feeds, exc) from None

    def _failure(self, feeds: Mapping[str, np.ndarray], exc: Exception) -> BenchError:
        """One line: onnxruntime's complaint, then each input as fed with the flag that changes it."""
        shapes = {k: tuple(int(d) for d in v.shape) for k, v in feeds.items()}
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BenchError(
            f"{self.path.name}: inference failed with synthesized inputs: {first}; inputs used: "
            f"{failure_hint(self.info, self.feed_spec, shapes)}; give the shapes the model expects with those flags"
        )

    def prepare(self, phase: Phase, prompt_tokens: int, context_tokens: int) -> None:
        if self._session is None:
            raise BenchError("OrtRunner.prepare called before load()")
        if phase == Phase.RUN or not self.is_decoder:
            self._feeds = self._working_feeds()
        elif phase == Phase.PREFILL:
            self._feeds = synthesize(self.info, self.feed_spec, seq=prompt_tokens, past=0)
        elif phase == Phase.DECODE:
            self._feeds = self._decode_feeds(context_tokens)
        else:
            raise BenchError(f"OrtRunner cannot time phase {phase.value!r}")

    def _working_feeds(self) -> dict[str, np.ndarray]:
        """Synthesized feeds that run: one untimed trial inference. When it fails and an image input's size was
        only a default guess (no --shape, --dim or metadata), other common sizes are tried (a text recognizer
        wants a 32-64 pixel high strip, a detector a multiple of 32), and the first that runs is kept and said
        (``inputs_used``); otherwise the first failure, with each input's shape and flag, is raised."""
        feeds = synthesize(self.info, self.feed_spec)
        try:
            self._session.run(None, feeds)
            return feeds
        except Exception as exc:
            failure = self._failure(feeds, exc)
        for spec in image_size_alternatives(self.info, self.feed_spec):
            trial = synthesize(self.info, spec)
            try:
                self._session.run(None, trial)
            except Exception:
                continue
            self.adapted = frozenset(n for n in spec.shapes if spec.shapes[n] != self.feed_spec.shapes.get(n))
            self.feed_spec = spec
            return trial
        raise failure

    def inputs_used(self) -> tuple[str, ...]:
        """Each input as fed to a non-decoder run, e.g. ``x[1, 3, 48, 224] (image, NCHW, default)``."""
        if self.is_decoder:
            return ()
        plans = plan_inputs(self.info, self.feed_spec)
        return tuple(
            (dataclasses.replace(p, source="tried: the default size failed") if p.name in self.adapted else p).text
            for p in plans
        )

    def _decode_feeds(self, depth: int) -> dict[str, np.ndarray]:
        """The cache at ``depth`` from a real prefill's present outputs, as llama-bench -d does."""
        if depth == 0 or self.kv_fill == "synthetic":
            return synthesize(self.info, self.feed_spec, seq=1, past=depth)
        if depth > self._kv_depth:
            self._fill_cache(max(depth, self.kv_fill_tokens))
        feeds = synthesize(self.info, self.feed_spec, seq=1, past=depth, skip=frozenset(self.info.past_inputs))
        for past in self.info.past_inputs:
            axis = past_dim_index(self.info.input(past))
            index = [slice(None)] * self._kv[past].ndim
            index[axis] = slice(0, depth)
            feeds[past] = np.ascontiguousarray(self._kv[past][tuple(index)])
        return feeds

    def _fill_cache(self, depth: int) -> None:
        outputs = self._run(synthesize(self.info, self.feed_spec, seq=depth, past=0))
        names = [o.name for o in self._session.get_outputs()]
        by_name = dict(zip(names, outputs, strict=True))
        self._kv = {}
        for past, present in zip(self.info.past_inputs, self.info.present_outputs, strict=True):
            value = np.asarray(by_name[present])
            axis = past_dim_index(self.info.input(past))
            if value.ndim <= axis or value.shape[axis] != depth:
                raise BenchError(
                    f"{self.path.name}: present output {present!r} has shape {list(value.shape)} after a "
                    f"{depth}-token prefill; expected {depth} on axis {axis} (a cache this tool cannot drive)"
                )
            self._kv[past] = value
        self._kv_depth = depth

    def step_s(self) -> float:
        feeds = self._feeds
        run = self._session.run
        try:
            t0 = time.perf_counter()
            run(None, feeds)
            return time.perf_counter() - t0
        except Exception as exc:
            raise self._failure(feeds, exc) from None

    def close(self) -> None:
        self._session = None
        self._feeds = {}
        self._kv = {}


LatencySource = Iterable[float] | Callable[[Phase, int, int], float]


class ScriptedRunner:
    """Returns given latencies instead of running anything (tests of orchestration, stopping and warnings).

    ``latencies`` maps (phase, prompt_tokens, context_tokens) to an iterable of seconds (cycled), or is one
    callable ``f(phase, prompt_tokens, context_tokens) -> seconds``. ``on_step`` is called after each step
    (tests use it to simulate Ctrl-C at a given point).
    """

    def __init__(
        self,
        latencies: Mapping[tuple[Phase, int, int], Iterable[float]] | Callable[[Phase, int, int], float],
        *,
        load_s: float = 0.01,
        is_decoder: bool = True,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self._latencies = latencies
        self._load_s = load_s
        self._is_decoder = is_decoder
        self._on_step = on_step
        self._current: Callable[[], float] = lambda: 0.0
        self.steps = 0
        self.prepared: list[tuple[Phase, int, int]] = []

    @property
    def is_decoder(self) -> bool:
        return self._is_decoder

    def load(self) -> float:
        return self._load_s

    def prepare(self, phase: Phase, prompt_tokens: int, context_tokens: int) -> None:
        key = (phase, prompt_tokens, context_tokens)
        self.prepared.append(key)
        src = self._latencies
        if callable(src):
            fn = src
            self._current = lambda: float(fn(phase, prompt_tokens, context_tokens))
        else:
            if key not in src:
                raise BenchError(f"ScriptedRunner has no latencies for {key}")
            it = itertools.cycle(list(src[key]))
            self._current = lambda: float(next(it))

    def step_s(self) -> float:
        value = self._current()
        self.steps += 1
        if self._on_step is not None:
            self._on_step(self.steps)
        return value

    def close(self) -> None:
        return None
