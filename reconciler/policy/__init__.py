"""policy: see DESIGN.md."""
