"""The API client over real HTTP against the simulator: success and every error reason."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scribe_exporter.client import PollError, ScribeClient
from scribe_exporter.config import ApiConfig
from scribe_exporter.secrets import Secret
from scribe_exporter.simulator import Fault

from .conftest import SimHandle, key_for, one_connection_server


@pytest.fixture
def client(sim: SimHandle) -> Iterator[ScribeClient]:
    api = ApiConfig(base_url=sim.url, timeout_seconds=1)
    c = ScribeClient(api)
    yield c
    c.close()


ACME = Secret(key_for("acme"))


def fail(client: ScribeClient, key: Secret = ACME) -> PollError:
    with pytest.raises(PollError) as caught:
        client.fetch_clicks(key, "hour")
    return caught.value


def test_success_returns_the_simulator_window(client: ScribeClient, sim: SimHandle) -> None:
    response = client.fetch_clicks(ACME, "hour")
    expected = sim.sim.clicks_body(sim.workspaces["acme"], "hour", sim.sim.clock())
    assert list(response.counts) == [d["count"] for d in expected["data"]]
    assert response.total == expected["totals"]["count"]
    assert sim.sim.requests["acme"] == 1


def test_wrong_key_is_unauthorized_with_the_envelope_code(client: ScribeClient) -> None:
    error = fail(client, Secret("sk_test_wrong"))
    assert (error.reason, error.status, error.code) == ("unauthorized", 401, "invalid_api_key")
    assert "sk_test_wrong" not in str(error)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (403, "forbidden"),
        (404, "not_found"),
        (409, "client_error"),
        (422, "client_error"),
        (429, "rate_limited"),
        (500, "server_error"),
        (502, "server_error"),
        (503, "server_error"),
        (302, "invalid_response"),
    ],
)
def test_status_codes_map_to_reasons(
    client: ScribeClient, sim: SimHandle, status: int, reason: str
) -> None:
    sim.sim.set_fault(Fault(status=status, headers={"Retry-After": "7"}), "acme")
    error = fail(client)
    assert (error.reason, error.status) == (reason, status)
    assert error.retry_after == "7"


def test_non_envelope_error_body_still_maps(client: ScribeClient, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(status=502, body=b"<html>Bad gateway</html>"), "acme")
    error = fail(client)
    assert (error.reason, error.code) == ("server_error", None)


def test_timeout(client: ScribeClient, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(delay_seconds=5, times=1), "acme")
    error = fail(client)
    assert error.reason == "timeout"
    assert "no answer within 1s" in str(error)


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = ScribeClient(ApiConfig(base_url=f"http://127.0.0.1:{port}", timeout_seconds=1))
    error = fail(c)
    assert error.reason == "connection"
    assert "ConnectionRefusedError" in str(error) or "Errno 111" in str(error)


def test_connection_closed_mid_body(client: ScribeClient, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(truncate=True), "acme")
    error = fail(client)
    assert error.reason == "connection"
    assert "IncompleteRead" in str(error)


def test_html_page_with_200_is_invalid(client: ScribeClient, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(body=b"<html>maintenance</html>"), "acme")
    error = fail(client)
    assert (error.reason, str(error)) == ("invalid_response", "body is not JSON")


def test_schema_violation_is_invalid_with_what_was_wrong(
    client: ScribeClient, sim: SimHandle
) -> None:
    sim.sim.set_fault(
        Fault(
            body=b'{"data": [], "totals": {"count": -1}, "granularity": "hour", "time_zone": "UTC"}'
        ),
        "acme",
    )
    error = fail(client)
    assert error.reason == "invalid_response"
    assert str(error) == "totals.count must not be negative, got -1"


def test_server_that_drips_bytes_hits_the_overall_deadline() -> None:
    """The read timeout of requests is per read; the client bounds the whole body."""
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.2):
            conn.sendall(b" ")

    with one_connection_server(drip) as url:
        c = ScribeClient(ApiConfig(base_url=url, timeout_seconds=0.5))
        try:
            assert fail(c).reason == "timeout"
        finally:
            stop.set()
            c.close()


def test_key_is_sent_as_bearer_and_netrc_is_ignored(
    client: ScribeClient, sim: SimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    response = client.fetch_clicks(ACME, "day")
    assert response.granularity == "day"


def test_content_type_is_reported_but_not_a_reason_to_reject(
    client: ScribeClient, sim: SimHandle
) -> None:
    valid = b'{"data": [], "totals": {"count": 0}, "granularity": "hour", "time_zone": "UTC"}'
    sim.sim.set_fault(Fault(body=valid, headers={"Content-Type": "text/plain"}, times=1), "acme")
    assert client.fetch_clicks(ACME, "hour").total == 0
    sim.sim.set_fault(
        Fault(body=b"<html>login</html>", headers={"Content-Type": "text/html"}), "acme"
    )
    error = fail(client)
    assert (error.reason, str(error)) == (
        "invalid_response",
        "body is not JSON (content type text/html)",
    )


def test_an_absurd_window_is_rejected(client: ScribeClient, sim: SimHandle) -> None:
    data = ",".join(f'{{"period": "2015-01-01T00:00:00Z", "count": {i}}}' for i in range(100_000))
    body = (
        f'{{"data": [{data}], "totals": {{"count": 1}}, "granularity": "hour", "time_zone": "UTC"}}'
    )
    sim.sim.set_fault(Fault(body=body.encode()), "acme")
    error = fail(client)
    assert (error.reason, str(error)) == (
        "invalid_response",
        "data holds 100000 buckets, more than 10000",
    )
