"""`python -m emulator` as a process: one JSON line with the endpoints, loopback only, a clear refusal of an
unknown scenario, and a clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.core.scenario import shipped_names
from tests.emulator.support import PROJECT, raw_http
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "GRPC_VERBOSITY": "NONE", "PYTHONPATH": str(ROOT)}


def _emulator(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "the emulator printed nothing"
    return process.stdout.readline()


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    process = _emulator("--scenario", "healthy")
    try:
        info = json.loads(_first_line(process))
        yield process, info
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _ports(info: dict[str, Any]) -> list[int]:
    return [_port(info["grpc"]), _port(info["metadata"]), _port(info["rest"].removeprefix("http://"))]


def test_prints_one_json_line_with_the_endpoints(running: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, info = running
    assert sorted(info) == ["admin", "ca_file", "grpc", "metadata", "project", "rest", "scenario", "service_account"]
    assert Path(info["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")  # CONNECT's CA, for curl
    assert (info["project"], info["service_account"], info["scenario"]) == (PROJECT, WORKLOAD, "healthy")
    assert info["admin"] == info["rest"] + "/_emulator"
    status, body = raw_http(info["admin"] + "/world")
    assert status == 200
    assert json.loads(body)["workload"] == WORKLOAD
    metadata = f"http://{info['metadata']}/computeMetadata/v1/project/project-id"
    assert raw_http(metadata, headers={"Metadata-Flavor": "Google"}) == (200, PROJECT)


def test_listens_on_loopback_only(running: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, info = running
    assert [info["grpc"].split(":")[0], info["metadata"].split(":")[0]] == ["127.0.0.1", "127.0.0.1"]
    assert info["rest"].startswith("http://127.0.0.1:")
    ports = _ports(info)
    listening = _listening_sockets()
    if listening is not None:  # Linux: every listening socket on our ports is bound to 127.0.0.1, none to ::
        assert sorted(addr for addr, port in listening if port in ports) == ["127.0.0.1"] * 3
    for port in ports:  # control: the same ports do answer on loopback
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    other = _non_loopback_ip()
    if other is not None:
        for port in ports:
            with pytest.raises(ConnectionRefusedError), socket.create_connection((other, port), timeout=2):
                pass


def test_stops_on_sigterm_with_no_further_output() -> None:
    process = _emulator("--scenario", "iam_denied")
    assert json.loads(_first_line(process))["scenario"] == "iam_denied"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert (out, err) == ("", "")


def test_unknown_scenario_exits_non_zero_with_a_clear_message() -> None:
    process = _emulator("--scenario", "nope")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert out == ""
    assert err == f"emulator: unknown scenario 'nope'; shipped scenarios: {', '.join(shipped_names())}\n"


def test_a_missing_outbox_folder_is_refused_naming_it(tmp_path: Path) -> None:
    process = _emulator("--outbox", str(tmp_path / "nope"))
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert out == ""
    assert f"--outbox {tmp_path / 'nope'}: not a folder" in err


def test_serving_functions_and_an_outbox_are_options(tmp_path: Path) -> None:
    process = _emulator("--serve-functions", "--outbox", str(tmp_path))
    try:
        assert json.loads(_first_line(process))["scenario"] == "healthy"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def _listening_sockets() -> list[tuple[str, int]] | None:
    """(address, port) of every listening TCP socket, from /proc/net/tcp{,6}; None off Linux."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            return None
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)  # 32-bit words in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(packed)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # gRPC listens on ::ffff:127.0.0.1, which is IPv4 loopback
            found.append((str(address), int(hex_port, 16)))
    return found


def _non_loopback_ip() -> str | None:
    """An IPv4 address of this machine that is not loopback (its default-route or host-name address), if any."""
    candidates = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 9))  # UDP connect only picks a route; nothing is sent
        candidates.append(str(probe.getsockname()[0]))
    with contextlib.suppress(OSError):
        candidates += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    usable = (
        a for a in candidates if not (ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_unspecified)
    )
    return next(usable, None)
