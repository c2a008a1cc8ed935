"""Feed: watch events, clip and user vectors, candidate sources, ranking and feed sessions.

Reads the social graph through ``backend.accounts.service`` (``hidden_authors``) so that blocked
and muted authors never reach a viewer.
"""
