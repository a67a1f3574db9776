"""LLM adapters: scripted (offline, deterministic), OpenAI-compatible, Anthropic."""
