"""Webhooks: the callback URL a job may name, how a delivery is signed, and when a failed one is
tried again.

A callback URL must be https, carry no credentials, and name a host whose every address is
public, both when the job is created and again when delivering (DNS can change in between); a
deployment for tests (webhook_allow_private) also takes http and private addresses. The body is
signed with the deployment's secret: ``Cutout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``, so a receiver can check where it came from and refuse an old one (a replay).
"""

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

EVENT_HEADER = "Cutout-Event"
SIGNATURE_HEADER = "Cutout-Signature"
SIGNATURE_SCHEME = "v1"
# A receiver refuses a signature older than this: the documented replay window.
SIGNATURE_TOLERANCE_S = 300
MAX_CALLBACK_URL_CHARS = 2048
# SQS hides a message for at most 12 hours: the longest wait between two attempts.
MAX_RETRY_DELAY_S = 43200
RETRY_GROWTH = 4

Resolver = Callable[[str], list[str]]


def host_addresses(host: str) -> list[str]:
    """Every address the host resolves to, in the resolver's order of preference (none when it does
    not resolve)."""
    try:
        return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)))
    except (socket.gaierror, UnicodeError):
        return []


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def callback_url_problem(url: str, allow_private: bool, resolve: Resolver = host_addresses) -> str | None:
    """Why a job may not call this URL back, or None when it may."""
    if len(url) > MAX_CALLBACK_URL_CHARS:
        return f"must be at most {MAX_CALLBACK_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return "is not a URL"
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return f"must be an {' or '.join(schemes)} URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if not parts.hostname:
        return "must name a host"
    addresses = resolve(parts.hostname)
    if not addresses:
        return f"its host {parts.hostname!r} does not resolve"
    if not allow_private and not all(is_public(address) for address in addresses):
        return f"its host {parts.hostname!r} must resolve to public addresses only"
    return None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Cutout-Signature header of body sent at timestamp."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},{SIGNATURE_SCHEME}={digest}"


def signature_is_valid(secret: str, header: str, body: bytes, now: float) -> bool:
    """What a receiver checks: the header signs this body with the secret, within the replay window."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), header.encode())


def retry_delay_s(attempt: int, first_retry_s: int) -> int:
    """How long to wait after failed attempt number attempt (1 for the first) before the next."""
    return min(first_retry_s * RETRY_GROWTH ** (attempt - 1), MAX_RETRY_DELAY_S)


def is_success(status: int) -> bool:
    return 200 <= status < 300
