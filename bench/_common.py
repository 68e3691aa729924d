"""What every benchmark shares: a scratch folder for its generated data, never a user's warehouse."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def scratch_dir(name: str) -> Path:
    """A fresh temp dir for the benchmark `name` (generated scale data lives only here)."""
    return Path(tempfile.mkdtemp(prefix=f"cbi-bench-{name}-"))


def release(tmp: Path, keep: bool) -> None:
    """Delete the scratch dir, or say where it is kept (--keep)."""
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
