"""Peak-memory estimate of a user's model file before anything loads it (the memory guard's input; ladder rungs
use ``edgefit.ladder.Rung.estimated_run_bytes``/``estimated_build_bytes``, the same physics from the spec).

    peak ≈ base process (Python + numpy + onnxruntime)
         + weights as onnxruntime holds them (file bytes x prepack factor; fp16 is upcast to fp32: x2)
         + the largest single tensor (transient copy while prepacking / initializing)
         + KV cache and logits of the largest planned step (past + present copies)

Figures (ONNXRUNTIME-NOTES.md, this host, onnxruntime 1.32): steady RSS ~= 40-60 MiB + prepacked weights
(fp32 x1.0, int8 x1.05, int4 accuracy-level-4 x1.27); load peak adds about the largest tensor. A Python
process with numpy, psutil and onnxruntime imported measured 64 MiB RSS here, hence BASE_PROCESS_BYTES.
``memory.check_fits`` then adds its margin and reserve and compares with what this process may use.
"""

from __future__ import annotations

from edgefit.bench.modelinfo import ModelFileInfo
from edgefit.units import MIB

BASE_PROCESS_BYTES = 64 * MIB
# A user file may hold MatMulNBits weights (prepacked up to ~1.27x) next to float ones (x1.0); without
# knowing the split, assume the quantized factor for the whole file when any quantized op is present.
FILE_FLOAT_FACTOR = 1.0
FILE_QUANTIZED_FACTOR = 1.27


def file_peak_bytes(info: ModelFileInfo) -> int:
    factor = FILE_QUANTIZED_FACTOR if info.has_quantized_ops else FILE_FLOAT_FACTOR
    held = info.weight_file_bytes * factor + info.float16_weight_bytes  # fp16 weights double when upcast
    return int(BASE_PROCESS_BYTES + held + info.largest_tensor_bytes)
