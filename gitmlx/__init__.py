"""gitmlx: version ML artifacts (checkpoints, safetensors, datasets) with plain git."""

__version__ = "0.1.0"
