"""The business layer: every rule lives here, shared by REST, GraphQL, CLI and workers."""
