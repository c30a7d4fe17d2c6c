"""gitmlx: version ML artifacts (checkpoints, safetensors, datasets) with plain git.

The Python API (docs/python-api.md) is loaded on first use, so `import gitmlx` stays as
cheap as the filter process needs it to be:

    import gitmlx
    with gitmlx.open("models/model.safetensors", rev="v1") as f: ...
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "open": "gitmlx.api.artifacts",
    "read_range": "gitmlx.api.artifacts",
    "fetch_path": "gitmlx.api.artifacts",
    "load_tensors": "gitmlx.api.artifacts",
    "ArtifactFile": "gitmlx.api.reader",
    "MlxError": "gitmlx.errors",
    "IntegrityError": "gitmlx.errors",
    "ObjectNotFound": "gitmlx.errors",
}
__all__ = [
    "ArtifactFile",
    "IntegrityError",
    "MlxError",
    "ObjectNotFound",
    "__version__",
    "fetch_path",
    "load_tensors",
    "open",
    "read_range",
]

# Not `typing.TYPE_CHECKING`: every `git-mlx` start would pay typing's import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from gitmlx.api.artifacts import fetch_path, load_tensors, open, read_range  # noqa: A004
    from gitmlx.api.reader import ArtifactFile
    from gitmlx.errors import IntegrityError, MlxError, ObjectNotFound


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gitmlx' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
