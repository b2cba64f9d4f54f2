"""What several layers need and none owns: atomic file writes, progress lines, saving figures."""
