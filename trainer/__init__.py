"""PyTorch side of hvuaudit: train AMT models from a split folder, evaluate them, report.

Never imports ``hvuaudit``. Its only input contract is the split folder (plus a
videos directory) and its output contract is the run folder; see README.md.
"""
