"""TLS for the provider's hosts: the chain always verified, one relaxation in the name check.

The personal host ``sms_developer.zhenzikj.com`` has an underscore, and OpenSSL (so Python's own
check) never lets a ``*.zhenzikj.com`` wildcard cover a label with ``_``: the usual check would
refuse every call to the default URL, which is why the official SDKs switch verification off.
Here OpenSSL still verifies the chain and the dates; the host name is then checked by
``name_matches`` (RFC 6125, plus: a whole-label wildcard may cover a leftmost label holding
``_``). The check runs inside ``connect()``, right after the handshake and before the request
is written, so no form (and no appSecret) reaches a server that fails it.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import certifi
from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.ssl_match_hostname import CertificateError

from campaigns.errors import TlsError, UserError

# A host label as it appears on the provider's hosts: letters, digits, hyphen and underscore.
_HOST_LABEL = re.compile(r"[a-z0-9_-]+")
# OpenSSL's verify codes, in the user's words (X509_V_ERR_*).
_VERIFY_CODES = {
    2: "unknown CA (the issuer's certificate is not in the trust store)",
    9: "the certificate is not valid yet",
    10: "the certificate has expired",
    18: "unknown CA (the certificate is self-signed)",
    19: "unknown CA (a self-signed certificate in the chain)",
    20: "unknown CA (the issuer is not in the trust store)",
    21: "unknown CA (the certificate's signature cannot be verified)",
}
_ADVICE = {
    "unknown CA": "behind a corporate TLS proxy, give its CA with --ca-bundle FILE "
    "(env ZHENZI_CA_BUNDLE)",
    "expired": "the provider must renew it; --insecure-tls skips the check, at your own risk",
    "name": "check --api-url (env ZHENZI_API_URL)",
}


class NameMismatch(CertificateError):
    """The certificate's names do not cover the host (raised before any request is written)."""

    def __init__(self, host: str, names: list[str]) -> None:
        self.host = host
        self.names = names
        shown = ", ".join(names) if names else "no DNS or IP names"
        super().__init__(f"name mismatch: the certificate is for {shown}, not {host}")


def _wildcard_matches(pattern: str, host: str) -> bool:
    """``*`` as the whole leftmost label, covering exactly one label (``_`` allowed in it)."""
    labels, host_labels = pattern.split("."), host.split(".")
    if labels[0] != "*" or any("*" in label for label in labels[1:]) or len(labels) < 3:
        return False
    first = host_labels[0]
    return (
        len(host_labels) == len(labels)
        and host_labels[1:] == labels[1:]
        and bool(_HOST_LABEL.fullmatch(first))
        and not first.startswith("xn--")
    )


def _dns_name_matches(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if "*" not in pattern:
        return pattern == host
    return _wildcard_matches(pattern, host)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def certificate_names(cert: dict[str, Any]) -> list[str]:
    return [
        value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]


def name_matches(cert: dict[str, Any], host: str) -> bool:
    """RFC 6125 against the subjectAltName (no common-name fallback), plus the ``_`` rule.

    A name without ``*`` must equal the host; a wildcard is only a whole leftmost label, never
    partial (``w*``), never across dots, never over an IDNA label; an IP address host matches
    only an equal IP address entry.
    """
    host = host.rstrip(".").lower()
    address = _ip(host)
    for kind, value in cert.get("subjectAltName", ()):
        if address is not None and kind == "IP Address":
            if _ip(value.rstrip()) == address:
                return True
        elif address is None and kind == "DNS" and _dns_name_matches(value, host):
            return True
    return False


def make_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext:
    """Chain and dates checked by OpenSSL against ``ca_bundle`` (else certifi), names by us."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise UserError(f"--ca-bundle {ca_bundle}: cannot load it as PEM CAs ({reason})") from None
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED
    return context


class CheckedHTTPSConnection(HTTPSConnection):
    """Runs ``name_matches`` after the handshake, before anything is written."""

    def connect(self) -> None:
        super().connect()
        if self.ssl_context is None or self.ssl_context.verify_mode == ssl.CERT_NONE:
            return
        host = (self.server_hostname or self._tunnel_host or self.host).rstrip(".")
        cert = self.sock.getpeercert() or {}  # type: ignore[union-attr]
        if not name_matches(cert, host):
            self.sock.close()
            raise NameMismatch(host, certificate_names(cert))


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


_CHECKED_POOLS = {"http": HTTPConnectionPool, "https": _CheckedHTTPSPool}


class ProviderAdapter(HTTPAdapter):
    """A requests adapter whose HTTPS connections use our context and our name check only.

    requests' own ``verify`` handling is bypassed (it would load certifi into the context and
    so undo ``--ca-bundle``); urllib3's name check is off (``assert_hostname=False``) because
    ``CheckedHTTPSConnection`` does it.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = _CHECKED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Through an HTTP(S) proxy's tunnel, the same check; a SOCKS proxy is refused, as its
        pools would check no name at all with ``assert_hostname=False``."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not isinstance(manager, ProxyManager):
            raise UserError(f"proxy {proxy}: only http:// and https:// proxies are supported")
        manager.pool_classes_by_scheme = _CHECKED_POOLS
        return manager

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        insecure = self._context.verify_mode == ssl.CERT_NONE
        return host_params, {
            "ssl_context": self._context,
            "assert_hostname": False,
            "cert_reqs": "CERT_NONE" if insecure else "CERT_REQUIRED",
        }

    def cert_verify(self, conn, url, verify, cert) -> None:
        """Everything is in the context already."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, ``reason``, cause, context), each once."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])


# A connection cut mid-stream (a reset, an EOF) shows up as an SSL error too; it is the network,
# not the certificate, and is retried like any dropped connection.
_CUT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ConnectionError, TimeoutError)


def tls_failure(exc: BaseException, host: str) -> TlsError | None:
    """What failed in a TLS handshake, in one line naming the host, with what to do.

    None when the connection was merely cut: that is a network failure, not a TLS refusal.
    """
    for cause in _causes(exc):
        if isinstance(cause, NameMismatch):
            return TlsError(host, "name", str(cause), _ADVICE["name"])
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = cause.verify_code
            what = _VERIFY_CODES.get(code) or f"certificate refused ({cause.verify_message})"
            kind = "expired" if code in (9, 10) else "unknown CA" if code in _VERIFY_CODES else ""
            return TlsError(host, kind or "certificate", what, _ADVICE.get(kind, ""))
    if any(isinstance(cause, _CUT) for cause in _causes(exc)):
        return None
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or cause.strerror or type(cause).__name__
            return TlsError(host, "handshake", f"handshake failed ({reason})", "")
    return TlsError(host, "handshake", f"handshake failed ({type(exc).__name__})", "")


def describe_certificate(cert: dict[str, Any]) -> dict[str, Any]:
    """Names, issuer and expiry of a peer certificate (``getpeercert()``), for ``doctor``."""
    issuer = dict(pair for rdn in cert.get("issuer", ()) for pair in rdn)
    subject = dict(pair for rdn in cert.get("subject", ()) for pair in rdn)
    expires = cert.get("notAfter")
    return {
        "names": certificate_names(cert),
        "subject": subject.get("commonName", ""),
        "issuer": issuer.get("organizationName") or issuer.get("commonName", ""),
        "expires": _iso(ssl.cert_time_to_seconds(expires)) if expires else None,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
