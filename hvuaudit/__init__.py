"""hvuaudit: audit scene bias in HVU annotations and train models that do not lean on it.

The audit core (this package) never imports torch or textual; the TUI lives in
``hvuaudit.tui`` and the PyTorch trainer in the separate ``trainer`` package.
"""

__version__ = "0.1.0"
