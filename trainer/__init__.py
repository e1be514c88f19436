"""The trainer: AMT models trained from a split folder into a run folder.

Where it sits: after the split exporter, before the evaluator. Its input contract is
the split folder (:mod:`hvucontracts.splitfolder`) plus a videos directory, its output
contract the run folder (:mod:`hvucontracts.runfolder`). Never imports ``hvuaudit``.
``trainer.__main__`` (``python -m trainer``) also offers the evaluator's commands, so
that a training node needs one entry point; that is the only import of ``hvueval``.

Data flow: :mod:`~trainer.config` (options, tasks.json) → :mod:`~trainer.videos`
(files, pre-flight) → :mod:`~trainer.decoding` → :mod:`~trainer.dataset` →
:mod:`~trainer.models` (:mod:`~trainer.backbones`) → :mod:`~trainer.losses` →
:mod:`~trainer.engine` (one epoch) → :mod:`~trainer.train` (the run, resume) with
:mod:`~trainer.distributed` and :mod:`~trainer.utils`.
"""
