"""Placeholder until its issue lands; see README.md."""
