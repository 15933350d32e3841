"""`edgefit profiles` (placeholder until its issue lands; the owning module replaces this file)."""

from __future__ import annotations

import argparse

from edgefit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profiles", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("'edgefit profiles' is not built yet in this version")
