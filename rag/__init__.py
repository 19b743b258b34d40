"""Answering stage: retrieve passages, build the numbered prompt, generate, verify citations; the CLI."""
