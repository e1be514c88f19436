"""The TUI's screens: one module per screen, plus the modals they push."""
