"""helix-agents: an actor-per-session runtime for AI agents."""
