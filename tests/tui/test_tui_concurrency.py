"""The TUI beside a real writer process: neither side sees a lock error, and the TUI shows the new data.

DuckDB lets one process write and, while it does, no other process can open the file (not even
read-only). The TUI reads with short read-only connections and gives up quickly when a writer holds
the file (the screen keeps its data, marked stale); writers retry on the lock. These tests run
both at once for several cycles.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tui.app import CbiApp
from tui.widgets.summary import batches_line

REPO = Path(__file__).resolve().parents[2]


async def _next_paint(app, pilot, timeout: float = 20) -> None:
    """Wait until the screen paints a read that started after now."""
    n = app.screen.reads
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while app.screen.reads < n + 2 and loop.time() < end:
        await pilot.pause(0.05)
    assert app.screen.reads >= n + 2, "the TUI stopped painting"


async def _watch(app, pilot, proc: subprocess.Popen, timeout: float) -> tuple[int, int]:
    """Let the TUI refresh while `proc` runs; return (successful reads, stale reads) meanwhile."""
    reads0, fails0 = app.screen.reads, app.screen.failures
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while proc.poll() is None and loop.time() < end:
        await pilot.pause(0.1)
    assert proc.poll() is not None, "the writer did not finish in time"
    return app.screen.reads - reads0, app.screen.failures - fails0


def test_tui_and_cbi_ingest_loop_run_together(home: Path, sample_data: Path):
    cycles = 4
    script = (
        "import subprocess, sys\n"
        f"for i in range({cycles}):\n"
        "    r = subprocess.run([sys.executable, '-c', 'from cbi_local.cli import main; main()', 'ingest', sys.argv[1],"
        " '--home', sys.argv[2], '--json'],"
        " capture_output=True, text=True)\n"
        "    print(r.returncode, repr(r.stderr[-300:]), flush=True)\n"
    )

    async def go():
        app = CbiApp(home, refresh_every=0.1)
        async with app.run_test(size=(100, 30)) as pilot:
            await _next_paint(app, pilot)
            before = sum(app.last_overview.batches.values())
            proc = subprocess.Popen([sys.executable, "-c", script, str(sample_data / "fred"), str(home)],
                                    cwd=REPO, stdout=subprocess.PIPE, text=True)
            reads, stale = await _watch(app, pilot, proc, timeout=240)
            out = proc.stdout.read().splitlines()
            assert len(out) == cycles
            for line in out:
                assert line.startswith("0 "), line  # every writer run succeeded
                assert "lock" not in line.lower(), line
            assert reads >= 3, (reads, stale)  # the TUI kept painting between the writer's runs
            await _next_paint(app, pilot)
            ov = app.last_overview
            assert sum(ov.batches.values()) == before + cycles  # the new batches are on screen
            assert batches_line(ov.batches).plain in app.export_text()
            print(f"TUI reads during the writer loop: {reads} painted, {stale} stale (writer held the file)")

    asyncio.run(go())


def test_tui_shows_the_daemon_heartbeat_while_it_runs(tmp_path: Path, bq_emulator):
    try:
        import sync.daemon  # noqa: F401
    except ImportError:
        import pytest

        pytest.fail("sync.daemon is missing: the heartbeat test needs it")
    from cbi_local import warehouse

    home = tmp_path / "home"
    warehouse.init(home / "warehouse.duckdb")
    cycles = 4
    script = (
        "import sys\n"
        "from cbi_local.config import settings\n"
        "from sync.daemon import Daemon\n"
        "s = settings(sys.argv[1]).model_copy(update={'bq_endpoint': sys.argv[2], 'bq_project': sys.argv[3]})\n"
        f"sys.exit(Daemon(s, interval=0.3).run(max_cycles={cycles}))\n"
    )

    async def go():
        app = CbiApp(home, refresh_every=0.1)
        async with app.run_test(size=(100, 30)) as pilot:
            await _next_paint(app, pilot)
            assert app.last_overview.daemon is None
            assert "no daemon" in app.export_text()
            proc = subprocess.Popen([sys.executable, "-c", script, str(home), bq_emulator.endpoint, "tuidaemon"],
                                    cwd=REPO, stderr=subprocess.PIPE, text=True)
            reads, stale = await _watch(app, pilot, proc, timeout=240)
            log = proc.stderr.read()
            assert proc.returncode == 0, log
            assert "lock" not in log.lower(), log
            assert log.count(": ok:") == cycles, log
            await _next_paint(app, pilot)
            d = app.last_overview.daemon
            assert d is not None and d["cycles"] == cycles and d["status"] == "ok"
            assert f"{cycles} cycles, ok" in app.export_text()
            assert d["message"][:24] in app.export_text()  # what the last cycle did, one line under the daemon's
            assert reads >= 1
            print(f"TUI reads during the daemon: {reads} painted, {stale} stale")

    asyncio.run(go())
