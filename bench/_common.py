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


# --- shared by bench/scale (and usable by bench/ingest): the real sample, phases, memory -----

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# One raw-JSON ohlcv bar as a Databento batch download writes it (64-bit fields as strings).
BAR_JSON = (
    '{{"hd":{{"ts_event":"{ts}","rtype":{rtype},"publisher_id":1,"instrument_id":{iid}}},'
    '"open":"{open}","high":"{high}","low":"{low}","close":"{close}","volume":"{volume}"}}'
)


def sample_dir() -> Path:
    """The real Databento GLBX.MDP3 sample (CBI_SAMPLE_DATA, default ../shared/data)."""
    return Path(os.environ.get("CBI_SAMPLE_DATA") or REPO.parent / "shared" / "data").resolve() / "databento" / "GLBX.MDP3"


def real_bars(schema: str = "ohlcv-1h") -> list[dict]:
    """The real ES bars of the shared sample, decoded with `databento` to raw-JSON records (dicts)."""
    import databento as db

    src = sample_dir() / f"test_data.{schema}.dbn.zst"
    with tempfile.TemporaryDirectory(prefix="cbi-bench-sample-") as tmp:
        out = Path(tmp) / "real.json"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            db.DBNStore.from_file(src).to_json(out, pretty_px=False, pretty_ts=False, map_symbols=False)
        return [json.loads(line) for line in out.read_text().splitlines()]


def minor_faults() -> int:
    """Pages the kernel had to hand this process fresh (4 KB each): on a VM a large share of the time."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def timed_calls(phases: dict[str, float], targets: dict[str, tuple[object, str]]) -> Iterator[dict[str, float]]:
    """Add the wall time of every call of `getattr(obj, attr)` to phases[label] while inside.

    `targets` maps a phase label to (object, attribute): a class (its method, for every
    instance), a module (its function, as callers that look it up there see it). Nested calls
    of two targets count in both. The originals are put back on exit."""
    saved = []
    for label, (obj, attr) in targets.items():
        real = getattr(obj, attr)
        phases.setdefault(label, 0.0)

        def timed(*a, _f=real, _k=label, **kw):
            t0 = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                phases[_k] += time.perf_counter() - t0

        saved.append((obj, attr, real))
        setattr(obj, attr, timed)
    try:
        yield phases
    finally:
        for obj, attr, real in reversed(saved):
            setattr(obj, attr, real)
