"""Cameo: verified likenesses, their owners' consent (only me / approved / mutuals / everyone),
grants, appearances and licensing. Consent "mutuals" rests on
``backend.accounts.service.are_mutuals``."""
