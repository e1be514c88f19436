"""The contracts between hvuaudit's halves: what the audit core and the trainer both rely on.

Where it sits: below everything. ``hvuaudit`` (the audit core and its CLI), ``trainer``,
``hvueval``, ``hvudemo`` and the TUI import it; it imports only the standard library (click
in ``cli.py``; polars inside ``splitfolder.read_split_csv``, when a CSV is read), never
duckdb, numpy, torch, textual or any package of ours
(``tests/core/test_layers.py`` checks it in a subprocess, import-linter statically).

* :mod:`hvucontracts.errors`: the one error family (message + hint) and the exit-code table;
* :mod:`hvucontracts.files`: atomic writes that follow the umask, folders that hvuaudit
  owns (the marker that lets ``--force`` replace them and nothing else), the paths
  that no command may ever replace, and JSON documents read with a clear error;
* :mod:`hvucontracts.cli`: the one CLI error handler, and outputs that never replace an input;
* :mod:`hvucontracts.process`: worker processes that end with their parent;
* :mod:`hvucontracts.splitfolder`: the split folder (format, files, columns, labels, name templates);
* :mod:`hvucontracts.tasks`: tasks.json (format, roles);
* :mod:`hvucontracts.runfolder`: the run folder (file names, formats, readers).
"""
