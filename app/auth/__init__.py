"""Authentication: JWT handling (tokens.py), principals, FastAPI dependencies."""
