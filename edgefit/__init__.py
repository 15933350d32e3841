"""edgefit: which models run on which edge device, how fast, in how much memory, at what power."""

__version__ = "0.1.0"
