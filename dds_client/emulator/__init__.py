"""Emulator placeholder."""
