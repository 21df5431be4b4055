"""One webhook POST, to the addresses that were checked: the host is resolved once, every address it
gives must pass cutout.webhooks' rule, and the connection goes to one of those addresses (TLS still
checks the certificate against the host name), so DNS changing between the check and the connect
cannot point a delivery at a private address. Redirects are not followed."""

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from cutout.webhooks import callback_url_problem, host_addresses

USER_AGENT = "Cutout-Webhooks/1"


class DeliveryRefused(Exception):
    """The URL no longer passes the callback URL rule (its host now resolves elsewhere)."""


def connect_to_one(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first of the checked addresses that answers (a host may list an IPv6
    address first that this network cannot reach)."""
    failure: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as error:
            failure = error
    raise failure or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, addresses: list[str], port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = connect_to_one(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, addresses: list[str], port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = connect_to_one(self._addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, allow_private: bool) -> int:
    """POST body as JSON to url; the receiver's HTTP status."""
    addresses = host_addresses(urlsplit(url).hostname or "")
    problem = callback_url_problem(url, allow_private, resolve=lambda _host: addresses)
    if problem is not None:
        raise DeliveryRefused(f"callback_url {problem}")
    parts = urlsplit(url)
    https = parts.scheme == "https"
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    port = parts.port or (443 if https else 80)
    connection = connection_class(parts.hostname, addresses, port, timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        response = connection.getresponse()
        response.read(64 * 1024)  # a little of the answer, so the connection closes cleanly
        return response.status
    finally:
        connection.close()
