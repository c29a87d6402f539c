"""api: see DESIGN.md."""
