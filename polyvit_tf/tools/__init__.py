"""Command-line tools (absl apps)."""
