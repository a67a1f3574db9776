"""LLM adapters: scripted (offline, deterministic), OpenAI-compatible, Anthropic.

Adapters that need an optional dependency (``openai``, ``anthropic``) are imported lazily, on first
access of their name, so that ``import adapters`` works without those packages installed. To add one,
put its name and module in ``_LAZY`` and in ``__all__``, and import it under ``TYPE_CHECKING`` so type
checkers see it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .scripted import ScriptedAdapter, ScriptedStep, ScriptedToolCall

if TYPE_CHECKING:
    from .anthropic import AnthropicAdapter
    from .openai import OpenAIAdapter

__all__ = ["AnthropicAdapter", "OpenAIAdapter", "ScriptedAdapter", "ScriptedStep", "ScriptedToolCall"]

# name -> module (relative to this package) that defines it; imported on first access.
_LAZY: dict[str, str] = {"AnthropicAdapter": ".anthropic", "OpenAIAdapter": ".openai"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
