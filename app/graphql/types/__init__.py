"""GraphQL object and input types; sources are the services' plain dicts."""
