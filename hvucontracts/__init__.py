"""The contracts between hvuaudit's halves: what the audit core and the trainer both rely on.

Where it sits: below everything. ``hvuaudit`` (the audit core and its CLI), ``trainer``
and the TUI import it; it imports only the standard library (and click, in ``cli.py``),
never duckdb, polars, numpy, torch, textual, ``hvuaudit`` or ``trainer``
(``tests/test_safety.py`` checks it in a subprocess).

* :mod:`hvucontracts.errors`: the one error family (message + hint) and the exit-code table;
* :mod:`hvucontracts.files`: atomic writes that follow the umask, folders that hvuaudit
  owns (the marker that lets ``--force`` replace them and nothing else), the paths
  that no command may ever replace, and JSON documents read with a clear error;
* :mod:`hvucontracts.cli`: the one CLI error handler, and outputs that never replace an input;
* :mod:`hvucontracts.process`: worker processes that end with their parent.
"""
