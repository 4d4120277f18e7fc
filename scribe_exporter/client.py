"""The Scribe API client: one pooled session, explicit timeouts, errors mapped to poll reasons."""

from __future__ import annotations

import json
import os
import time
from typing import Literal

import requests
import urllib3
from requests.adapters import HTTPAdapter

from . import __version__
from .config import ApiConfig, Granularity
from .response import ClicksResponse, InvalidResponseError, parse_clicks
from .secrets import Secret

Reason = Literal[
    "timeout",
    "connection",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "client_error",
    "server_error",
    "invalid_response",
]
REASONS: tuple[Reason, ...] = (
    "timeout",
    "connection",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "client_error",
    "server_error",
    "invalid_response",
)
CLICKS_PATH = "/v1/analytics/clicks"


class PollError(Exception):
    """A failed request. `reason` is one of REASONS; the message never contains the key."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.code = code
        self.retry_after = retry_after


def _reason_for_status(status: int) -> Reason:
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "client_error"
    if status >= 500:
        return "server_error"
    # 1xx and 3xx (redirects are not followed: they could carry the key to another host).
    return "invalid_response"


def _error_code(body: bytes) -> str | None:
    """The `code` of the documented error envelope, if the body is one."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        code = envelope["error"].get("code")
        if isinstance(code, str):
            return code[:64]
    return None


class _BearerAuth(requests.auth.AuthBase):
    """Explicit auth, so that a ~/.netrc (which requests would consult) never replaces the key."""

    def __init__(self, key: Secret) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key.reveal()}"
        return request


class ScribeClient:
    """Fetches the clicks timeseries of one workspace per call; safe to share between threads."""

    def __init__(self, api: ApiConfig, pool_size: int = 8) -> None:
        self.api = api
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # requests reads the proxy and CA variables of the environment at every request (a
        # third of a poll's CPU); read them once here instead.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(api.base_url)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self.session.headers["User-Agent"] = f"scribe-exporter/{__version__}"
        self.session.headers["Accept"] = "application/json"

        # Prepared requests per (key, granularity): preparing one (URL parsing, header and
        # cookie merging) costs more than sending it. A rotated key gets a new entry.
        self._prepared: dict[tuple[Secret, Granularity], requests.PreparedRequest] = {}

    def close(self) -> None:
        self.session.close()

    def _request(self, key: Secret, granularity: Granularity) -> requests.PreparedRequest:
        prepared = self._prepared.get((key, granularity))
        if prepared is None:
            if len(self._prepared) > 100_000:
                self._prepared.clear()
            request = requests.Request(
                "GET",
                self.api.base_url + CLICKS_PATH,
                params={"granularity": granularity},
                auth=_BearerAuth(key),
            )
            prepared = self.session.prepare_request(request)
            self._prepared[(key, granularity)] = prepared
        return prepared.copy()

    def fetch_clicks(self, key: Secret, granularity: Granularity) -> ClicksResponse:
        """GET the clicks of one workspace; raises PollError with the contract's reason."""
        deadline = time.monotonic() + self.api.timeout_seconds
        try:
            with self.session.send(
                self._request(key, granularity),
                timeout=self.api.timeout_seconds,
                allow_redirects=False,
                stream=True,
            ) as reply:
                status = reply.status_code
                retry_after = reply.headers.get("Retry-After")
                content_type = reply.headers.get("Content-Type", "")
                body = self._read_body(reply, deadline)
        except requests.Timeout:
            raise PollError("timeout", f"no answer within {self.api.timeout_seconds:g}s") from None
        except requests.ConnectionError as exc:
            raise PollError("connection", _describe_connection_error(exc)) from None
        except requests.RequestException as exc:
            raise PollError("connection", f"request failed: {type(exc).__name__}") from None
        if status != 200:
            code = _error_code(body)
            raise PollError(
                _reason_for_status(status),
                f"HTTP {status}" + (f" ({code})" if code else ""),
                status=status,
                code=code,
                retry_after=retry_after,
            )
        try:
            return parse_clicks(body, granularity, content_type)
        except InvalidResponseError as exc:
            raise PollError("invalid_response", str(exc), status=status) from None

    def _read_body(self, reply: requests.Response, deadline: float) -> bytes:
        # The read timeout of requests applies per socket read; a server that drips bytes could
        # hold a worker forever, so the whole body shares one deadline. read1 returns what has
        # arrived instead of waiting for a full chunk, so the deadline is checked between reads.
        limit = self.api.max_response_bytes
        announced = reply.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > limit:
            raise PollError("invalid_response", f"body of {announced} bytes exceeds {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := reply.raw.read1(65536, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    # Cut off: the rest is never read into memory.
                    raise PollError("invalid_response", f"body larger than {limit} bytes")
                if time.monotonic() > deadline:
                    raise requests.Timeout()
        # Reading the raw stream bypasses requests' mapping of urllib3's errors; map them here.
        except urllib3.exceptions.ReadTimeoutError:
            raise requests.Timeout() from None
        except urllib3.exceptions.DecodeError:
            raise PollError("invalid_response", "body cannot be decoded") from None
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError) as exc:
            raise PollError("connection", f"connection broken while reading: {exc}") from None
        return b"".join(chunks)


def _describe_connection_error(exc: requests.ConnectionError) -> str:
    # The text of a urllib3 error holds the URL and host, never headers; keep the innermost cause.
    cause: BaseException = exc
    for _ in range(10):  # a chain is short; the bound guards against a cycle
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    return f"connection failed: {type(cause).__name__}: {str(cause)[:200]}"
