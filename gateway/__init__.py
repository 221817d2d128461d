"""A scope-enforcing GraphQL gateway for school rostering data."""

__version__ = "0.1.0"
