"""The evaluator: what a run folder says about a model, as numbers, tables and figures.

Where it sits: after the trainer. It reads run folders (:mod:`hvucontracts.runfolder`)
and split folders (:mod:`hvucontracts.splitfolder`); never imports ``hvuaudit``.

* :mod:`hvueval.dcorr`: exact blockwise dcorr² (numpy; torch only for its GPU backend);
* :mod:`hvueval.report`: the paper's Table 2 from run folders (no torch);
* :mod:`hvueval.curves`, :mod:`hvueval.tsne`: Fig. 4 and Fig. 5 (no torch);
* :mod:`hvueval.figures`: every figure a set of runs allows, for a report (no torch
  unless Grad-CAM figures are asked for);
* :mod:`hvueval.evaluate`, :mod:`hvueval.gradcam`: the two parts that run a model (torch);
* :mod:`hvueval.cli`: the click commands (``eval``, ``dcorr``, ``report``, ``plot``, ``explain``).
"""
