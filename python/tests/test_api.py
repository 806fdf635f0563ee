"""The `memsweep` Python module: memory_status() and check_memory_headroom() through the bundled
binary, inside a real memory cgroup, and the error a user gets when the binary is missing."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memsweep

MiB = 1 << 20
GiB = 1 << 30

PROBE = """
import json, logging, memsweep
logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
status = memsweep.memory_status()
print(json.dumps({
    "status": status,
    "big": memsweep.check_memory_headroom(required_gb=1.0),
    "small": memsweep.check_memory_headroom(required_gb=0.1),
}))
"""


def test_the_api_sees_the_cgroup_limit_not_the_hosts_ram(make_cgroup) -> None:
    cg = make_cgroup(512 * MiB)
    proc = subprocess.run(
        cg.wrap([sys.executable, "-c", PROBE]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    status = out["status"]
    assert status["source"] == "cgroup1"
    assert status["cgroup_path"] == "/" + cg.path.name
    assert status["cgroup_limit_bytes"] == 512 * MiB
    assert status["limit_bytes"] == 512 * MiB
    assert status["host_total_bytes"] > 512 * MiB
    assert 0 < status["available_bytes"] < 512 * MiB
    # 1 GiB cannot fit in a 512 MiB cgroup however free the host is; 0.1 GiB can.
    assert out["big"] is False
    assert out["small"] is True
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING:memsweep:")]
    assert len(warnings) == 1, proc.stderr
    # the warning `memsweep check` gives: what is available, against which limit, from where
    assert "512 MiB" in warnings[0] and cg.path.name in warnings[0], warnings[0]


def test_memory_status_here_is_consistent() -> None:
    status = memsweep.memory_status()
    for key in (
        "source",
        "cgroup_path",
        "cgroup_limit_bytes",
        "limit_bytes",
        "usage_bytes",
        "working_set_bytes",
        "available_bytes",
        "host_total_bytes",
        "host_available_bytes",
        "swap_limit_bytes",
        "memory_high_bytes",
        "peak_bytes",
        "oom_kills",
        "pressure",
        "cpus",
    ):
        assert key in status, f"memsweep mem --json has no {key!r}: {sorted(status)}"
    assert status["source"] in ("cgroup1", "cgroup2", "host")
    assert 0 < status["limit_bytes"] <= status["host_total_bytes"]
    assert 0 < status["available_bytes"] <= status["limit_bytes"]


def test_check_memory_headroom_rejects_nonsense() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="required_gb"):
            memsweep.check_memory_headroom(required_gb=bad)
    with pytest.raises(TypeError, match="required_gb"):
        memsweep.check_memory_headroom(required_gb="10G")  # type: ignore[arg-type]


def test_check_memory_headroom_passes_a_tiny_need(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert memsweep.check_memory_headroom(required_gb=0.001) is True
    assert not caplog.records


def test_a_missing_binary_says_where_it_looked_and_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.delenv(memsweep.BINARY_ENV, raising=False)
    monkeypatch.setattr(memsweep._sysconfig, "get_path", lambda *a: str(empty))
    monkeypatch.setattr(memsweep._sys, "executable", str(empty / "python"))
    monkeypatch.setattr(memsweep, "__file__", str(empty / "memsweep" / "__init__.py"))
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(memsweep.MemsweepNotFoundError) as e:
        memsweep.memory_status()
    msg = str(e.value)
    assert str(empty) in msg and "PATH" in msg
    assert "pip install ./python" in msg and "MEMSWEEP_BIN" in msg

    monkeypatch.setenv(memsweep.BINARY_ENV, str(tmp_path / "nope"))
    with pytest.raises(
        memsweep.MemsweepNotFoundError, match="MEMSWEEP_BIN=.*nope.*not an executable"
    ):
        memsweep.check_memory_headroom(1.0)


def test_the_installed_binary_is_found_without_activating_the_venv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `.venv/bin/python -m ...` leaves .venv/bin off PATH; the binary must still be found.
    monkeypatch.delenv(memsweep.BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", os.defpath)
    found = Path(memsweep.find_binary())
    import sysconfig

    assert found.parent == Path(sysconfig.get_path("scripts"))
    assert (
        subprocess.run([str(found), "--version"], capture_output=True, check=False).returncode == 0
    )


def test_the_module_exposes_only_its_api() -> None:
    public = {n for n in dir(memsweep) if not n.startswith("_")}
    assert not public & {"os", "json", "subprocess", "sys", "shutil", "sysconfig", "math"}
    assert set(memsweep.__all__) <= public
    assert memsweep.__version__ != "0+unknown", "the version comes from the package metadata"


def test_memory_status_has_the_typed_keys() -> None:
    status = memsweep.memory_status()
    # The TypedDict names exactly what `memsweep mem --json` prints.
    assert set(status) == set(memsweep.MemoryStatus.__annotations__)
    assert status["schema_version"] == 1


def _fake_binary(path: Path, version: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho memsweep {version}\n")
    path.chmod(0o755)


def test_pip_target_and_user_installs_are_found_and_a_version_mismatch_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv(memsweep.BINARY_ENV, raising=False)
    monkeypatch.setattr(memsweep._sys, "executable", str(empty / "python"))
    monkeypatch.setenv("PATH", str(empty))
    # pip install --target T: the package in T/memsweep, the binary in T/bin.
    target = tmp_path / "target"
    _fake_binary(target / "bin" / "memsweep", memsweep.__version__)
    monkeypatch.setattr(memsweep._sysconfig, "get_path", lambda *a: str(empty))
    monkeypatch.setattr(memsweep, "__file__", str(target / "memsweep" / "__init__.py"))
    with caplog.at_level(logging.WARNING, logger="memsweep"):
        assert memsweep.find_binary() == str(target / "bin" / "memsweep")
    assert not caplog.records
    # pip install --user: the user scheme's scripts dir, with a binary of another version.
    user = tmp_path / "user" / "bin"
    _fake_binary(user / "memsweep", "9.9.9")
    monkeypatch.setattr(
        memsweep._sysconfig,
        "get_path",
        lambda name, scheme=None: str(user) if scheme and scheme.endswith("_user") else str(empty),
    )
    monkeypatch.setattr(memsweep, "__file__", str(empty / "memsweep" / "__init__.py"))
    with caplog.at_level(logging.WARNING, logger="memsweep"):
        assert memsweep.find_binary() == str(user / "memsweep")
    assert any("reports version 9.9.9" in r.getMessage() for r in caplog.records), caplog.text
