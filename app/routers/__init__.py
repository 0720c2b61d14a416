"""Thin REST adapters: parse input, call one service, shape the response."""
