"""Messages that say what is true (issue 24): an unreachable BigQuery during a dry run, an
unparseable key file, missing credentials, a warehouse held by a writer."""

from __future__ import annotations

import socket

from cbi_local import warehouse

from .conftest import copy_home, run_cli


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused
    return f"http://127.0.0.1:{port}"


def test_dry_run_with_bigquery_unreachable_says_the_batches_are_pending(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"), endpoint=_closed_port())
    result = run_cli(s, "sync", "push", "--dry-run", CBI_SYNC_ATTEMPTS="2", CBI_SYNC_CALL_DEADLINE="1")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "no validated batches" not in out
    assert "1 validated batch pending" in out and "unreachable" in out, out
    assert "Traceback" not in out


def _no_credentials_env(tmp_path, **extra: str) -> dict[str, str]:
    # A real project (no emulator endpoint), no gcloud configuration, no metadata server.
    return {"CBI_BQ_ENDPOINT": "", "HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True", **extra}  # fmt: skip


def test_an_unparseable_key_file_is_called_unparseable(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE')  # truncated: not JSON
    for args in (("sync", "push"), ("sync", "diff")):
        result = run_cli(s, *args, **_no_credentials_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(key)))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        err = result.stderr
        assert "unparseable" in err and str(key) in err, err
        assert "no Google credentials" not in err and "--no-push" not in err
        assert "BEGIN PRIVATE KEY" not in err and "MIIE" not in err  # never the key's contents
        assert "Traceback" not in err


def test_a_key_file_that_does_not_exist_is_named(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    missing = tmp_path / "nowhere" / "key.json"
    result = run_cli(s, "sync", "push", **_no_credentials_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(missing)))
    assert result.returncode == 2
    assert f"{missing} names a file that does not exist" in result.stderr, result.stderr


def test_no_credentials_never_suggests_an_option_the_command_lacks(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    env = _no_credentials_env(tmp_path)
    result = run_cli(s, "sync", "push", **env)
    if result.returncode == 0:  # pragma: no cover - a machine with ambient Google credentials
        return
    assert result.returncode == 2, result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "--no-push" not in result.stderr  # `cbi sync push` has no such option


def test_a_warehouse_held_by_a_writer_is_not_blamed_on_a_missing_init(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    with warehouse.open_warehouse(s.warehouse_path):  # this process is the writer
        result = run_cli(s, "sync", "status")
    if result.returncode != 0:  # a read-only command may also wait and read around the writer
        assert result.returncode == 2
        assert "cbi init" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
