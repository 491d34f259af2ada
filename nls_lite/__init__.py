"""nls_lite placeholder."""
