"""The kernel table: this host's onnxruntime kernels timed as functions of their shapes (the calibration).

Stages: ``plan`` (which chains) -> ``worker`` (a subprocess builds and times them, interleaved in rounds) ->
``table`` (estimators, fits per kernel class, noise) -> ``ops`` (a decoder's op list as onnxruntime runs it) ->
``edgefit.predict`` prices the ops with a table.
"""
