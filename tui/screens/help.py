"""`?`: the keys of every screen and how the TUI reads the warehouse."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# CBI Local TUI

| key | what |
|---|---|
| `1` `2` `3` `4` `5` `6` | Overview, Tables, Health, Coverage, Sync, Training |
| `r` | refresh this screen (a short read-only read); tables keep their cursor row |
| `t` | next tab (Tables, Health, Sync); the tab's table takes the focus |
| `?` | this help; `escape` closes it |
| `q` | quit |
| `s` | on a table: sort by a column (left/right choose it, `enter` sorts, again reverses, `escape` cancels); a header click sorts too |
| Tables `pgdn` / `pgup` | in the Preview: the next / previous 50 rows (primary key order) |
| Health `a` | show all checks / only problems |
| Health `enter` | on a check: its held rows, in the Quarantine tab |
| Health `R` / `D` | in the Quarantine tab's groups table only: release / drop the highlighted group (asks first; No is the default) |
| Health `u` | undo the latest drop (its rows are held again; asks first) |
| Coverage `c` | compute coverage (a worker; can take seconds) |
| Sync `p` / `l` / `d` | push / pull / diff with BigQuery (a worker) |

**Locks.** DuckDB lets one process write; while it writes, no other process can even read.
The TUI never keeps the warehouse open: each refresh opens a read-only connection for a few
milliseconds and closes it. When a writer (`cbi daemon`, `cbi ingest`) holds the file, the
screen keeps its last data, says it is stale, and the next refresh (`r`, or every few seconds
on the Overview) tries again. Writers retry on the lock, so the TUI never makes them fail.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [("escape", "dismiss", "Close"), ("question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
