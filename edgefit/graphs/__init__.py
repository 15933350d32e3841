"""Any user ONNX graph as onnxruntime runs it: its nodes (after graph optimizations), their shapes, bytes, MACs,
and each distinct node timed on this host in a single-node session (``measure``, run in a ``worker``).
``edgefit.predict.graph`` prices the result on any device."""
