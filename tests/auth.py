"""Test helpers for tokens (implemented with the tokens service)."""
