"""engine: see DESIGN.md."""
