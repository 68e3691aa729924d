"""What does a path hold? Databento downloads, FRED series, the regime registry, or legacy exports.

    kind_of(path)          -> 'databento' | 'fred' | 'registry' | 'legacy'   (UnknownInput otherwise)
    group_by_kind(paths)   -> {kind: [paths]}: a folder that is no kind itself (an inbox, `databento/`
                              holding one folder per root) is split into what it holds, at any depth
    walk(folder)           -> every file under a folder, symlinked folders followed once, loops and
                              depth beyond MAX_DEPTH reported as entries with a problem, never raised
    databento_name(name)   -> (schema, encoding, zstd) of a Databento file name, or None

This module is the one place Databento file names are understood (the schema list is the
`databento_dbn` library's own), so `cbi ingest`, `cbi run` and the daemon, which all go through
`cbi_local.pipeline.ingest_paths`, detect the same inputs the same way. Detection looks at names
and at most a header line, never at whole files, and stops at the first Databento name it meets,
so it is instant on a drive with thousands of daily files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import databento_dbn

# Every record schema Databento writes, as the library spells them (ohlcv-1h, mbo, bbo-1s ...).
DATABENTO_SCHEMAS = frozenset(str(s) for s in databento_dbn.Schema.variants())
_NAME = re.compile(r"^(?P<stem>.+?)(?:\.(?P<schema>[a-z0-9]+(?:-[a-z0-9]+)*))?\.(?P<enc>dbn|json|csv)(?P<zst>\.zst)?$")
SIDECARS = frozenset(("manifest.json", "metadata.json", "symbology.json", "condition.json"))
LEGACY_NAME = re.compile(r"^[a-z_]+\.[a-z0-9_]+\.parquet$")
# Folders deeper than this under a given path are not entered (reported when they hold files).
MAX_DEPTH = 8
# A Databento dataset in a name: files `glbx-mdp3-20201228...`, folders `GLBX.MDP3` or batch job
# ids `GLBX-20251118-TAAH7VN45V` (the dataset's first part, then the job date).
_FILE_DATASET = re.compile(r"(?:^|[^a-z0-9])([a-z]{3,5})-([a-z0-9]{3,8})-[0-9]{8}")
_FOLDER_DATASET = re.compile(r"^([A-Z]{3,5})(?:\.([A-Z0-9]{3,8})|-[0-9]{8}-[A-Z0-9]+)$")


class UnknownInput(ValueError):
    pass


def databento_name(name: str) -> tuple[str | None, str, bool] | None:
    """(record_schema, encoding, zstd) of a Databento data file name, None when it is not one.

    A DBN file without a schema in its name (a live capture, `capture.dbn.zst`) gives schema
    None: its metadata says what it holds."""
    m = _NAME.match(name)
    if not m or name in SIDECARS:
        return None
    schema = m["schema"]
    if schema in DATABENTO_SCHEMAS:
        return schema, m["enc"], bool(m["zst"])
    if m["enc"] == "dbn":
        return None, "dbn", bool(m["zst"])
    return None


def dataset_in_name(name: str, folder: bool = False) -> str | None:
    """The Databento dataset a file or folder name states (`glbx-mdp3-...` -> GLBX.MDP3), else None.

    A batch job folder (`GLBX-20251118-...`) states only the dataset's first part: returned as
    'GLBX.*', which names the venue."""
    if folder:
        m = _FOLDER_DATASET.match(name)
        return None if not m else f"{m[1]}.{m[2]}" if m[2] else f"{m[1]}.*"
    m = _FILE_DATASET.search(name.lower())
    return f"{m[1].upper()}.{m[2].upper()}" if m else None


@dataclass(frozen=True)
class Entry:
    """A file met by walk(): `path` as found, `real` with symlinks resolved; `problem` when it cannot be read."""

    path: Path
    real: Path
    problem: str | None = None


def _hidden(name: str) -> bool:
    # "._name" are macOS AppleDouble files on external drives, ".DS_Store" Finder's: never data.
    return name.startswith(".")


def walk(folder: Path, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
    """Files under `folder` in path order. Symlinked folders are followed, each real folder
    entered once (a link back up the tree, or a link loop, is reported, not followed); a
    symlink that cannot be resolved and a folder deeper than `max_depth` are reported as
    entries with a problem. os.scandir: no stat per entry, unlike rglob."""
    seen: set[str] = set()

    def go(path: str, depth: int, linked: bool) -> Iterator[Entry]:
        real = os.path.realpath(path)
        if real in seen:
            yield Entry(Path(path), Path(real), "symlink to a folder already read (a link loop or a second link): not read again")
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:  # unreadable sub-folder: reported, the rest goes on
            yield Entry(Path(path), Path(real), f"folder cannot be listed: {exc.strerror or exc}")
            return
        for e in entries:
            if _hidden(e.name):
                continue
            try:
                is_dir = e.is_dir()
                is_file = not is_dir and e.is_file()
            except OSError as exc:  # ELOOP: a symlink loop
                yield Entry(Path(e.path), Path(e.path), f"cannot be followed: {exc.strerror or exc}")
                continue
            link = linked or e.is_symlink()
            if is_dir:
                if depth >= max_depth:
                    yield Entry(Path(e.path), Path(e.path), f"folder deeper than {max_depth} levels: not read")
                else:
                    yield from go(e.path, depth + 1, link)
            elif is_file:
                yield Entry(Path(e.path), Path(os.path.realpath(e.path)) if link else Path(e.path))
            elif e.is_symlink():
                yield Entry(Path(e.path), Path(e.path), "broken symlink: its target does not exist")

    yield from go(str(folder), 0, False)


def _is_fred_csv(path: Path) -> bool:
    if path.suffix != ".csv" or path.name == "metadata.csv":
        return False
    try:
        with path.open("rb") as fh:
            return fh.readline().strip().lower().removeprefix(b"\xef\xbb\xbf") == b"date,value"
    except OSError:
        return False


def _file_kind(path: Path) -> str | None:
    if databento_name(path.name):
        return "databento"
    if _is_fred_csv(path):
        return "fred"
    if path.name in ("regime_weights.yaml", "regime_weights.yml"):
        return "registry"
    if LEGACY_NAME.match(path.name):
        return "legacy"
    return None


def _folder_kind(path: Path) -> str | None:
    """The kind a folder's own files make it; None when they make it none (its sub-folders may)."""
    try:
        names = sorted(n for n in os.listdir(path) if not _hidden(n))
    except OSError:
        return None
    if "regime_weights.yaml" in names:
        return "registry"
    if "symbology.json" in names or any(databento_name(n) for n in names):
        return "databento"
    if "metadata.csv" in names or any(_is_fred_csv(path / n) for n in names if n.endswith(".csv")):
        return "fred"
    if any(LEGACY_NAME.match(n) for n in names):
        return "legacy"
    return None


def _not_recognised(path: Path) -> UnknownInput:
    return UnknownInput(
        f"{path}: not recognised as Databento (glbx-mdp3-*.ohlcv-1h.json, *.dbn.zst ..., at any depth), FRED "
        "(date,value CSV), the regime registry (regime_weights.yaml) or legacy BigQuery exports (dataset.table.parquet)"
    )


def _split(path: Path, depth: int, seen: set[str], groups: dict[str, list[Path]]) -> bool:
    """Add what `path` holds to `groups`; False when nothing under it is recognised.

    A file or a folder that is a kind itself is added whole. Any other folder is split into
    its entries; when something under it is recognised, its unrecognised entries join the
    Databento group, whose loader records each of their files as skipped with the reason
    (every file seen is accounted). Symlinked folders are entered once."""
    if path.is_file():
        kind = _file_kind(path)
        if kind:
            groups.setdefault(kind, []).append(path)
        return kind is not None
    real = os.path.realpath(path)
    if real in seen or depth > MAX_DEPTH or not path.is_dir():
        return False
    seen.add(real)
    kind = _folder_kind(path)
    if kind:
        groups.setdefault(kind, []).append(path)
        return True
    try:
        children = sorted(p for p in path.iterdir() if not _hidden(p.name))
    except OSError:
        return False
    strays = [c for c in children if not _split(c, depth + 1, seen, groups)]
    if len(strays) == len(children):
        return False
    groups.setdefault("databento", []).extend(strays)
    return True


def kind_of(path: Path) -> str:
    """'databento', 'fred', 'registry' or 'legacy' for one path (a folder: what it holds at any
    depth, Databento first); UnknownInput names the path otherwise."""
    groups = group_by_kind([path])
    if len(groups) == 1:
        return next(iter(groups))
    return "databento" if "databento" in groups else sorted(groups)[0]


def group_by_kind(paths: Iterable[Path]) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise UnknownInput(f"{p}: no such file or directory")
        found: dict[str, list[Path]] = {}
        if not _split(p, 0, set(), found):
            raise _not_recognised(p)
        for kind, members in found.items():
            groups.setdefault(kind, []).extend(members)
    return groups
