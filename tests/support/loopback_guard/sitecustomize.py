"""Loaded by every Python process the README test starts (through PYTHONPATH): loopback only.

A belt to the private network namespace's braces: a README example that would reach a
public address (default boot nodes, the public DNS tree) fails at once with a clear error
instead of sending anything, even when the test runs outside ``./dev.sh test``'s namespace.
Connections and datagrams may go only to loopback addresses, never to port 53 (a local stub
resolver such as 127.0.0.53 would forward the query out), and names resolve only if they are
numeric or ``localhost``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_ALLOWED_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class PublicAddressBlocked(PermissionError):
    """A README example tried to reach something other than loopback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # Said once per kind of attempt on stderr too: the program may swallow the error (a dial
        # that fails is just a failed dial), and the test's failure report should still show why.
        if message not in _said:
            _said.add(message)
            sys.stderr.write(message + "\n")
            sys.stderr.flush()


_said: set[str] = set()


def _check_host(host: object, what: str) -> None:
    if host is None or host == "":
        return
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).split("%", 1)[0]
    if text in _ALLOWED_NAMES:
        return
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise PublicAddressBlocked(
            f"readme-test loopback guard: {what} of name {text!r} blocked (only loopback addresses and localhost)"
        ) from None
    if not ip.is_loopback and not (ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback):
        raise PublicAddressBlocked(f"readme-test loopback guard: {what} to {text} blocked (not loopback)")


def _check_address(sock: socket.socket, address: Any, what: str) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        _check_host(address[0], what)
        if len(address) > 1 and address[1] == 53:
            raise PublicAddressBlocked(f"readme-test loopback guard: {what} to DNS port {address[0]}:53 blocked")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_sendmsg = socket.socket.sendmsg
_getaddrinfo = socket.getaddrinfo


def connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address, "connection")
    return _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address, "connection")
    return _connect_ex(self, address)


def sendto(self: socket.socket, data: Any, *args: Any) -> int:
    _check_address(self, args[-1], "datagram")
    return _sendto(self, data, *args)


def sendmsg(self: socket.socket, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
    if address is not None:
        _check_address(self, address, "datagram")
        return _sendmsg(self, buffers, ancdata, flags, address)
    return _sendmsg(self, buffers, ancdata, flags)


def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
    _check_host(host, "lookup")
    return _getaddrinfo(host, *args, **kw)


# The guards take looser argument types than typeshed's methods: patching them in is the point.
socket.socket.connect = connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
socket.socket.sendmsg = sendmsg  # type: ignore[method-assign,assignment]
socket.getaddrinfo = getaddrinfo
