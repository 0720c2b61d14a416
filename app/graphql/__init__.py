"""GraphQL (Strawberry) at /graphql: thin adapters over the same services as REST."""
