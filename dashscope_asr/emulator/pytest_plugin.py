"""pytest plugin placeholder (registered through the pytest11 entry point)."""
