"""Moderation: prompt, caption and comment screening, likeness protection, reports, the review
queue, duplicates and provenance."""
