"""Query and mutation resolvers: parse arguments, call one service, return its dicts."""
