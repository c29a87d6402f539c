"""simulator: see DESIGN.md."""
