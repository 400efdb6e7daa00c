"""One HTTP connection to a Learning Record Store, shared by sending, reading and voiding.

The rules every request follows, whoever makes it:

- credentials go to the endpoint's origin (scheme, host, port) only: a URL on another
  origin (a ``more`` link, a redirect) is refused before anything is sent;
- a POST or PUT is never redirected: the 301/302 that turns ``http://`` into
  ``https://`` would turn it into a GET, and its reply into a false success. A GET
  follows redirects within the origin only;
- 5xx answers and network errors are retried with exponential backoff; 4xx never are;
- a proxy from the environment is ignored for a loopback LRS, so credentials meant for
  a server on this machine never leave it.
"""

from __future__ import annotations

import base64
import functools
import json
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from learnprivacy._closing import Closing
from learnprivacy.errors import ConfigurationError, DeliveryError

if TYPE_CHECKING:  # httpx is imported when a connection is made, not with the module.
    import httpx

__all__ = ["Auth", "LrsConnection"]

#: ``(username, password)`` for HTTP Basic, a full ``Authorization`` value, or ``None``.
Auth = tuple[str, str] | str | None

_MAX_BACKOFF = 30.0
_MAX_REDIRECTS = 5
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's default certificate checks, built once per process.

    Building it loads the CA bundle (about 25 ms of CPU); a context per connection made
    pushing a few statements several times slower than the HTTP work itself.
    """
    return ssl.create_default_context()


def _origin(url: str) -> tuple[str, str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


class LrsConnection(Closing):
    """Requests to one LRS: same-origin credentials, no redirected writes, retries on 5xx.

    ``retries`` is how many times a request is repeated after a 5xx answer or a network
    error, waiting ``backoff * 2**n`` seconds (at most 30) before the n-th repetition;
    ``sleep`` is how to wait (tests pass a recorder); ``transport`` an httpx transport
    (tests and benchmarks only). ``attempts_repeated`` counts the repetitions.
    """

    def __init__(
        self,
        endpoint: str,
        auth: Auth,
        *,
        version: str = "1.0.3",
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: Any = None,
    ) -> None:
        origin = _origin(endpoint) if isinstance(endpoint, str) else None
        if origin is None:
            raise ConfigurationError("the LRS endpoint must be an http(s) URL")
        if "@" in urlsplit(endpoint).netloc:
            # A user name or password in the URL would be in every repr and log line that
            # shows the endpoint; credentials go in ``auth``.
            raise ConfigurationError(
                "the LRS endpoint must not carry credentials: pass them as auth="
            )
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ConfigurationError("retries and backoff must be >= 0, timeout > 0")
        import httpx

        self.endpoint = endpoint
        self.host = origin[1]
        self._origin = origin
        self._headers = {
            "X-Experience-API-Version": version,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if isinstance(auth, tuple):
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        elif isinstance(auth, str):
            self._headers["Authorization"] = auth
        elif auth is not None:
            raise ConfigurationError("auth must be (user, password), a header value or None")
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self.attempts_repeated = 0
        self._client = httpx.Client(
            timeout=timeout,
            verify=_tls(),
            follow_redirects=False,
            trust_env=self.host not in _LOOPBACK,
            transport=transport,
        )

    def __repr__(self) -> str:
        # Never the credentials.
        return f"LrsConnection(host={self.host!r})"

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def resolve(self, link: str) -> str:
        """``link`` (absolute, or relative as xAPI ``more`` links are) made absolute;
        refused when it leaves the endpoint's origin."""
        url = urljoin(self.endpoint, link)
        if _origin(url) != self._origin:
            raise DeliveryError(
                f"the LRS at {self.host} pointed to another origin: not followed, so that "
                "its credentials go nowhere else"
            )
        return url

    def request(
        self, method: str, url: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        """One request, repeated with backoff on 5xx or a network error.

        Raises:
            DeliveryError: still failing after every retry, a redirect of a write or to
                another origin, or a URL on another origin.
        """
        import httpx

        url = self.resolve(url)
        content = None if body is None else _encode(body)
        redirects = 0
        last: int | None = None
        attempt = 0
        while True:
            if attempt > self._retries:
                cause = f"HTTP {last}" if last is not None else "no connection"
                raise DeliveryError(
                    f"the LRS at {self.host} did not answer after {attempt} attempts ({cause})",
                    status=last,
                )
            if attempt:
                self.attempts_repeated += 1
                self._sleep(min(self._backoff * 2 ** (attempt - 1), _MAX_BACKOFF))
            attempt += 1
            try:
                response = self._client.request(
                    method, url, content=content, params=params, headers=self._headers
                )
            except httpx.TransportError:
                last = None
                continue
            status = response.status_code
            if status >= 500:
                last = status
                continue
            if 300 <= status < 400:
                location = response.headers.get("location")
                if method != "GET" or location is None or redirects >= _MAX_REDIRECTS:
                    raise DeliveryError(
                        f"the LRS at {self.host} answered HTTP {status} to a {method}: a "
                        "redirect is not followed for a write; configure the final URL",
                        status=status,
                    )
                redirects += 1
                url, params = self.resolve(location), None
                attempt -= 1  # following a redirect is not a retry
                continue
            return response

    def refusal(self, response: httpx.Response, what: str) -> DeliveryError:
        """The error for a final 4xx answer (never retried), saying what it means."""
        status = response.status_code
        if status in (401, 403):
            reason = "refused the credentials"
        elif status in (404, 405):
            reason = "has no xAPI statements resource at this URL"
        elif status in (400, 422):
            # 400 is what xAPI specifies; FastAPI-based LRSs such as Ralph answer 422.
            reason = f"rejected the {what} as invalid"
        elif status == 413:
            reason = "refused a batch as too large: lower batch_size"
        else:
            reason = "refused the request"
        return DeliveryError(f"the LRS at {self.host} {reason} (HTTP {status})", status=status)

    def malformed(self, what: str, status: int) -> DeliveryError:
        """The error for a reply that is not what xAPI promises."""
        return DeliveryError(
            f"the LRS at {self.host} answered HTTP {status} with a reply that is not {what}",
            status=status,
        )


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
