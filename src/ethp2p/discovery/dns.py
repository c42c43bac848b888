"""DNS node lists (EIP-1459): ``enrtree://PUBKEY@domain`` trees of signed ENRs in TXT records.

The root ``enrtree-root:v1 e=<enr-root> l=<link-root> seq=<n> sig=<sig>`` must be
signed by the key in the URL; every other record's subdomain must equal the
base32 of the first 16 bytes of keccak256(its text), which pins the whole tree to
the signed root. Branches are walked lazily, links followed to other trees, and
the root re-checked on a schedule. Lookups go to a configurable resolver.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..crypto.keccak import keccak
from ..crypto.keys import InvalidKey, PrivateKey, PublicKey
from .enr import ENR, ENRError

log = logging.getLogger(__name__)

ROOT_PREFIX = "enrtree-root:v1"
BRANCH_PREFIX = "enrtree-branch:"
LINK_PREFIX = "enrtree://"
ENR_PREFIX = "enr:"
_HASH_RE = re.compile(r"^[A-Z2-7]{10,32}$")
#: Bounds on a tree walk (hostile zones can't make us walk forever).
MAX_ENTRIES = 100_000
MAX_LINK_DEPTH = 8
MAX_TXT_SIZE = 4096


class DNSDiscoveryError(ValueError):
    """A tree URL, record or signature is invalid (the message says which)."""


def _b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as e:
        raise DNSDiscoveryError(f"bad base32 {text!r}: {e}") from None


def _b64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise DNSDiscoveryError("signature is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as e:  # binascii.Error: a length no padding makes whole (e.g. 85 characters)
        raise DNSDiscoveryError(f"signature is not base64url: {e}") from None


def subdomain_of(text: str) -> str:
    """The subdomain a record with ``text`` must live at."""
    return base64.b32encode(keccak(text.encode())[:16]).decode().rstrip("=")


@dataclass(frozen=True)
class TreeURL:
    """``enrtree://<base32 compressed key>@<domain>``."""

    pubkey: PublicKey
    domain: str

    @classmethod
    def parse(cls, url: str) -> TreeURL:
        if not url.startswith(LINK_PREFIX) or "@" not in url:
            raise DNSDiscoveryError(f"not an enrtree URL: {url!r}")
        key_text, domain = url[len(LINK_PREFIX) :].split("@", 1)
        if not domain or not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
            raise DNSDiscoveryError(f"bad domain in {url!r}")
        try:
            pub = PublicKey.from_bytes(_b32decode(key_text))
        except InvalidKey as e:
            raise DNSDiscoveryError(f"bad public key in {url!r}: {e}") from None
        return cls(pub, domain)

    def __str__(self) -> str:
        key = base64.b32encode(self.pubkey.to_compressed()).decode().rstrip("=")
        return f"{LINK_PREFIX}{key}@{self.domain}"


@dataclass(frozen=True)
class Root:
    enr_root: str
    link_root: str
    seq: int
    signature: bytes

    @classmethod
    def parse(cls, text: str) -> Root:
        m = re.fullmatch(r"enrtree-root:v1 e=([A-Z2-7]+) l=([A-Z2-7]+) seq=(\d+) sig=([A-Za-z0-9_-]+)", text)
        if m is None:
            raise DNSDiscoveryError(f"bad root record: {text!r}")
        sig = _b64url(m.group(4))
        if len(sig) != 65:
            raise DNSDiscoveryError("root signature must be 65 bytes")
        return cls(m.group(1), m.group(2), int(m.group(3)), sig)

    def signed_text(self) -> str:
        return f"{ROOT_PREFIX} e={self.enr_root} l={self.link_root} seq={self.seq}"

    def verify(self, pubkey: PublicKey) -> bool:
        return pubkey.verify(self.signature[:64], keccak(self.signed_text().encode()))


#: A parsed tree entry: a branch's child hashes, a link to another tree, or a leaf record.
Entry = list[str] | TreeURL | ENR


def parse_entry(text: str) -> tuple[str, Entry]:
    """``("branch", [hashes])``, ``("link", TreeURL)`` or ``("enr", ENR)``; DNSDiscoveryError otherwise."""
    if text.startswith(BRANCH_PREFIX):
        body = text[len(BRANCH_PREFIX) :]
        hashes = [h for h in body.split(",") if h] if body else []
        for h in hashes:
            if not _HASH_RE.match(h) or len(_b32decode(h)) < 1:
                raise DNSDiscoveryError(f"bad branch child {h!r}")
        return "branch", hashes
    if text.startswith(LINK_PREFIX):
        return "link", TreeURL.parse(text)
    if text.startswith(ENR_PREFIX):
        try:
            return "enr", ENR.from_text(text)
        except ENRError as e:
            raise DNSDiscoveryError(f"bad ENR leaf: {e}") from None
    raise DNSDiscoveryError(f"unknown entry {text[:40]!r}")


Resolver = Callable[[str], Awaitable[str | None]]


def dnspython_resolver(nameserver: str | None = None, port: int = 53, timeout: float = 3.0) -> Resolver:
    """A TXT lookup function using dnspython (the system's resolver unless ``nameserver`` is given)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    if nameserver is None:
        res = dns.asyncresolver.Resolver()
    else:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [nameserver]
        res.port = port
    res.lifetime = timeout

    async def lookup(name: str) -> str | None:
        try:
            answer = await res.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as e:
            raise DNSDiscoveryError(f"DNS lookup of {name} failed: {e}") from None
        for rr in answer:
            text = b"".join(rr.strings).decode("utf-8", "replace")  # long records come in pieces
            if len(text) > MAX_TXT_SIZE:
                raise DNSDiscoveryError(f"TXT record at {name} is too large")
            return text
        return None

    return lookup


class TreeClient:
    """Reads one tree (and the trees it links to) through ``resolve``."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.entries_read = 0
        self.links_found: list[TreeURL] = []
        self.errors: list[str] = []

    async def _txt(self, name: str) -> str:
        text = await self.resolve(name)
        if text is None:
            raise DNSDiscoveryError(f"no TXT record at {name}")
        return text

    async def root(self, url: TreeURL) -> Root:
        root = Root.parse(await self._txt(url.domain))
        if not root.verify(url.pubkey):
            raise DNSDiscoveryError(f"root of {url.domain} is not signed by the tree's key")
        return root

    async def _entry(self, domain: str, h: str) -> tuple[str, Entry]:
        self.entries_read += 1
        if self.entries_read > MAX_ENTRIES:
            raise DNSDiscoveryError("tree is too large")
        text = await self._txt(f"{h}.{domain}")
        if subdomain_of(text) != h:
            raise DNSDiscoveryError(f"record at {h}.{domain} does not match its hash (tampered)")
        return parse_entry(text)

    async def walk(self, url: TreeURL, *, depth: int = 0, seen: set[str] | None = None) -> AsyncIterator[ENR]:
        """Every ENR in the tree at ``url``, then in the trees it links to (depth-first, lazily)."""
        if depth > MAX_LINK_DEPTH:
            raise DNSDiscoveryError("links nested too deeply")
        seen = seen if seen is not None else set()
        if url.domain in seen:
            return
        seen.add(url.domain)
        root = await self.root(url)
        async for record in self._subtree(url.domain, root.enr_root, "enr"):
            assert isinstance(record, ENR)  # _subtree yields only entries of the kind asked for
            yield record
        links: list[TreeURL] = []
        async for link in self._subtree(url.domain, root.link_root, "link"):
            assert isinstance(link, TreeURL)
            links.append(link)
        self.links_found.extend(links)
        for link in links:
            try:
                async for record in self.walk(link, depth=depth + 1, seen=seen):
                    yield record
            except DNSDiscoveryError as e:
                # A broken linked tree does not spoil this one.
                self.errors.append(f"{link}: {e}")

    async def _subtree(self, domain: str, h: str, want: str) -> AsyncIterator[ENR | TreeURL]:
        stack = [h]
        while stack:
            kind, value = await self._entry(domain, stack.pop())
            if isinstance(value, list):  # kind == "branch"
                stack.extend(reversed(value))
            elif kind == want:
                yield value
            else:
                raise DNSDiscoveryError(f"{kind} entry in the {want} tree of {domain}")


async def dns_discovery(
    url: str,
    resolve: Resolver,
    *,
    refresh_interval: float = 1800.0,
    on_error: Callable[[Exception], None] | None = None,
) -> AsyncGenerator[ENR, None]:
    """Yield the tree's ENRs, then re-check the root every ``refresh_interval`` and yield new ones.

    Runs until cancelled. Errors during a pass are reported to ``on_error`` (and
    logged) and the pass is retried at the next refresh.
    """
    tree = TreeURL.parse(url)
    yielded: set[bytes] = set()
    last_seq = -1
    while True:
        client = TreeClient(resolve)
        try:
            root = await client.root(tree)
            if root.seq != last_seq:
                async for record in client.walk(tree):
                    if record.node_id not in yielded:
                        yielded.add(record.node_id)
                        yield record
                last_seq = root.seq
        except DNSDiscoveryError as e:
            log.info("DNS discovery of %s: %s", tree.domain, e)
            if on_error:
                on_error(e)
        except Exception as e:  # the records are the network's: nothing in them may end the feed
            log.warning(
                "DNS discovery of %s: unexpected %s: %s (retried at the next refresh)", tree.domain, type(e).__name__, e
            )
            if on_error:
                on_error(e)
        t0 = time.monotonic()
        await asyncio.sleep(max(0.0, refresh_interval - (time.monotonic() - t0)))


def make_tree(
    key: PrivateKey,
    records: list[ENR],
    links: Sequence[str] = (),
    seq: int = 1,
    max_children: int = 13,
) -> tuple[str, dict[str, str]]:
    """Build and sign a tree: ``(root text, {subdomain: text})`` (for tests and for publishing lists)."""
    entries: dict[str, str] = {}

    def subtree(texts: list[str]) -> str:
        hashes = []
        for t in texts:
            h = subdomain_of(t)
            entries[h] = t
            hashes.append(h)
        while len(hashes) > max_children or not hashes:
            groups = [hashes[i : i + max_children] for i in range(0, len(hashes), max_children)] or [[]]
            hashes = []
            for g in groups:
                t = BRANCH_PREFIX + ",".join(g)
                entries[subdomain_of(t)] = t
                hashes.append(subdomain_of(t))
            if len(groups) == 1 and not groups[0]:
                break
        if len(hashes) == 1 and entries[hashes[0]].startswith(BRANCH_PREFIX):
            return hashes[0]
        t = BRANCH_PREFIX + ",".join(hashes)
        entries[subdomain_of(t)] = t
        return subdomain_of(t)

    e_root = subtree([r.text() for r in records])
    l_root = subtree(list(links))
    signed = f"{ROOT_PREFIX} e={e_root} l={l_root} seq={seq}"
    sig = key.sign(keccak(signed.encode()))
    root = f"{signed} sig={base64.urlsafe_b64encode(sig).decode().rstrip('=')}"
    return root, entries
