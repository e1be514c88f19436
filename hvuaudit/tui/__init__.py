"""The Textual face of hvuaudit (``hvuaudit tui``).

A thin interface over the audit core: screens call core functions
(:mod:`hvuaudit.cooccurrence`, :mod:`hvuaudit.nca`, :mod:`hvuaudit.annotations`,
:mod:`hvuaudit.splits`) in thread workers and never run SQL themselves. This is
the only package of ``hvuaudit`` that imports ``textual``; importing
``hvuaudit.tui`` itself imports nothing heavy, the app lives in
:mod:`hvuaudit.tui.app` (``make_app``).
"""
