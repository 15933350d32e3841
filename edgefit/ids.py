"""One pattern for every id edgefit stores or builds a file name from: device profiles, model cards (and the
``--id`` of a config.json), run ids in results and bundles.

An id is lowercase letters and digits in runs joined by single ``-``, ``.`` or ``_``: ``raspberry-pi-5-8gb``,
``qwen2.5-0.5b``, a uuid4 run id. So an id can never hold a path separator, ``..`` as a component, a leading
dot, whitespace, control characters or rich markup, and it is the same on case-insensitive file systems.
Ids are checked where they enter (a file is loaded, a flag is parsed, a bundle is imported); names derived from
file or folder names go through ``slug`` first.
"""

from __future__ import annotations

import re

from edgefit.errors import EdgefitError

ID_PATTERN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
MAX_ID_CHARS = 100
ID_RULE = f"lowercase letters and digits joined by single '-', '.' or '_', at most {MAX_ID_CHARS} characters"


def id_problem(value: object, example: str = "my-model-1b") -> str | None:
    """Why ``value`` is not a valid id (``expected ... (like 'example'), found ...``), or None when it is one."""
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS and ID_PATTERN.fullmatch(value):
        return None
    shown = repr(value) if not isinstance(value, str) or len(value) <= 60 else repr(value[:60]) + "..."
    return f"expected {ID_RULE} (like {example!r}), found {shown}"


def check_id(value: object, where: str, error: type[EdgefitError], *, example: str = "my-model-1b") -> str:
    """``value`` when it is a valid id, else raise ``error("<where>: expected ..., found ...")``."""
    problem = id_problem(value, example)
    if problem is not None:
        raise error(f"{where}: {problem}")
    assert isinstance(value, str)  # id_problem accepts only strings
    return value


def slug(text: str) -> str:
    """A valid id made from a file or folder name: ``Qwen2.5-0.5B Instruct`` -> ``qwen2.5-0.5b-instruct``.
    Empty when nothing usable is left (the caller then asks for an explicit id)."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    s = re.sub(r"[._-]{2,}", "-", s)  # "models--Qwen" -> "models-qwen"; ".." never survives
    return s.strip("._-")[:MAX_ID_CHARS].rstrip("._-")
