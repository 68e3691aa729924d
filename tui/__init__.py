"""The terminal UI (Textual): the only package that imports Textual. `cbi tui` starts it."""
