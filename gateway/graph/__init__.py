"""The Graph API: schema, root query, types, the guard (the one gate), loaders, pagination."""
