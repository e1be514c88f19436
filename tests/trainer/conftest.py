"""The trainer's tests need the [train] extra; without torch or PyAV none of them is collected."""

import importlib.util

MISSING = [name for name in ("torch", "av") if importlib.util.find_spec(name) is None]
collect_ignore_glob = ["test_*.py"] if MISSING else []
