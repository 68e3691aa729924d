"""Fault injection for the crash tests: a process kills itself at a named step.

`<ENV>=after:<step>[:<n>]` SIGKILLs the process at the n-th (default first) time it reaches
`<step>`; `<ENV>=wait:<step>[:<n>]` instead creates the file named by `<ENV>_GATE` and blocks
until it is removed (so a test can act while the process stands there). Each subsystem has
its own variable and names its steps where it calls `maybe_fault` (the ingest:
CBI_INGEST_FAULT, see cbi_local/pipeline.py). Unset, a call costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_counts: dict[tuple[str, str], int] = {}


def maybe_fault(env: str, step: str) -> None:
    spec = os.environ.get(env, "")
    kind, _, rest = spec.partition(":")
    if kind not in ("after", "wait"):
        return
    want, _, nth_text = rest.partition(":")
    if want != step:
        return
    key = (env, step)
    _counts[key] = _counts.get(key, 0) + 1
    if _counts[key] != (int(nth_text) if nth_text else 1):
        return
    if kind == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    gate = Path(os.environ[f"{env}_GATE"])
    gate.touch()
    deadline = time.monotonic() + 120
    while gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
