"""The change feed (DESIGN §9): each integration's CREATED, UPDATED and DELETED events."""
