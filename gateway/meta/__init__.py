"""The meta API at /meta/graphql: an application developer's own view of its integrations."""
