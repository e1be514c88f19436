"""The demo: the whole pipeline on a synthetic video set, explained in REPORT.md.

Where it sits: on top of everything. It is the only package allowed to import both
halves, the audit core (``hvuaudit``) and the trainer and evaluator (``trainer``,
``hvueval``); the import-linter contracts in pyproject.toml say so.

* :mod:`hvudemo.videoset`: the synthetic video set with a controlled scene bias
  (``hvuaudit synth videos``);
* :mod:`hvudemo.pipeline`: the steps (generate, ingest, NCA, split, train, evaluate)
  and the training jobs, run in worker processes so that the parent never imports torch;
* :mod:`hvudemo.analysis`: the numbers REPORT.md states (summaries, probes, checks);
* :mod:`hvudemo.report`: REPORT.md, rendered from ``templates/REPORT.md.j2`` with Jinja2;
* :mod:`hvudemo.cli`: the click commands.
"""
