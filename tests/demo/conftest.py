"""The built-in benchmark writes mp4s with PyAV, and the demo trains with torch: the [train] extra."""

import importlib.util

MISSING = [name for name in ("torch", "av", "sklearn") if importlib.util.find_spec(name) is None]
collect_ignore_glob = ["test_demo.py"] if MISSING else []
