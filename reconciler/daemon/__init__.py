"""daemon: see DESIGN.md."""
