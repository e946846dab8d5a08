"""alrun."""
