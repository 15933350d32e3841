"""One module per command group. Each has ``register(subparsers)``, which adds its parser and sets
``func=run``; ``run(args) -> int`` does the work and returns the exit code. These are the CLI shell: they
parse, call the library stages in order, and print (only the CLI and ``edgefit.report`` write to stdout)."""

# Order is the order in `edgefit --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "report",
    "fit",
    "predict",
    "calibrate",
    "bench",
    "validate",
    "results",
    "fleet",
    "models",
    "profiles",
    "detect",
)
