"""RLPx framing: AES-256-CTR encrypted frames authenticated with keccak MACs (sans-IO).

A frame on the wire is::

    header-ciphertext(16) || header-mac(16) || frame-ciphertext(padded to 16) || frame-mac(16)

The header plaintext is the 3-byte frame size, ``rlp([0, 0])`` (header-data, ignored
on read) and zero padding. The frame plaintext is ``rlp(msg-id) || msg-data``. One
AES-256-CTR stream with a zero IV runs per direction; the MAC states are keccak-256
objects seeded by the handshake and updated with AES-256-ECB(mac-secret) seeds.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .. import rlp
from .errors import FrameError
from .secrets import MacState, Secrets

HEADER_SIZE = 16
MAC_SIZE = 16
#: Header-data we send: rlp([capability-id=0, context-id=0]).
_HEADER_DATA = b"\xc2\x80\x80"
#: Largest frame the 3-byte size field can express.
MAX_FRAME_SIZE = (1 << 24) - 1
_ZERO_IV = bytes(16)


def _pad16(n: int) -> int:
    return (n + 15) & ~15


def _xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


class _MacHelper:
    """Header and frame MAC updates for one direction (devp2p rlpx.md "MAC")."""

    __slots__ = ("_mac", "_ecb")

    def __init__(self, mac: MacState, mac_secret: bytes) -> None:
        self._mac = mac
        # One reused ECB encryptor: it has no chaining state, each block stands alone.
        self._ecb = Cipher(algorithms.AES(mac_secret), modes.ECB()).encryptor()

    def header_mac(self, header_ciphertext: bytes) -> bytes:
        mac = self._mac
        seed = self._ecb.update(mac.digest()[:16])
        mac.update(_xor16(seed, header_ciphertext))
        return mac.digest()[:16]

    def frame_mac(self, *frame_ciphertext: bytes | memoryview) -> bytes:
        """MAC of a frame's ciphertext, given whole or in consecutive pieces."""
        mac = self._mac
        for piece in frame_ciphertext:
            mac.update(piece)
        prev = mac.digest()[:16]
        mac.update(_xor16(self._ecb.update(prev), prev))
        return mac.digest()[:16]


class FrameCodec:
    """Encrypts outgoing messages into frames and decrypts incoming frames into messages.

    ``feed`` buffers partial input and returns every complete ``(msg_id, payload)`` pair.
    Any authentication or format failure raises :class:`FrameError`; the codec is then
    unusable (the stream position is lost), and the connection must be dropped.

    ``max_first_frame_size`` bounds the incoming frames of a connection's handshake: every frame
    until one carrying a message id of ``handshake_ends_at`` or more has been read (by default only
    the first frame). At the p2p layer those are Hello, Ping, Pong, Disconnect and the first
    subprotocol message (eth's Status), all small. Each frame's size is checked from its header
    before any of its body is kept, so a peer cannot make us buffer a 16 MiB frame before it has
    even said who it is and what chain it is on.
    """

    def __init__(
        self,
        secrets: Secrets,
        *,
        max_frame_size: int = MAX_FRAME_SIZE,
        max_first_frame_size: int | None = None,
        handshake_ends_at: int = 0,
    ) -> None:
        if not 0 < max_frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be in 1..{MAX_FRAME_SIZE}")
        if max_first_frame_size is not None and not 0 < max_first_frame_size <= max_frame_size:
            raise ValueError(f"max_first_frame_size must be in 1..{max_frame_size}")
        if handshake_ends_at < 0:
            raise ValueError("handshake_ends_at must not be negative")
        aes = algorithms.AES(secrets.aes_secret)
        self._enc = Cipher(aes, modes.CTR(_ZERO_IV)).encryptor()
        self._dec = Cipher(algorithms.AES(secrets.aes_secret), modes.CTR(_ZERO_IV)).decryptor()
        self._egress = _MacHelper(secrets.egress_mac, secrets.mac_secret)
        self._ingress = _MacHelper(secrets.ingress_mac, secrets.mac_secret)
        self.max_frame_size = max_frame_size
        #: The handshake frames' own bound (None: the same as every frame's).
        self.max_first_frame_size = max_first_frame_size
        self._handshake_ends_at = handshake_ends_at
        #: True until a frame with a message id of ``handshake_ends_at`` or more has been read.
        self.in_handshake = max_first_frame_size is not None
        #: Incoming frames whose header has been read.
        self.frames_read = 0
        self._buf = bytearray()
        self._frame_size: int | None = None  # size of the frame whose header we have read
        self._broken = False

    # ---- egress ---------------------------------------------------------------------------

    def encode_message(self, msg_id: int, payload: bytes | memoryview) -> bytes:
        """One frame carrying message ``msg_id`` with (already compressed) ``payload``."""
        return self._encode(rlp.encode(msg_id), payload)

    def encode_frame(self, content: bytes) -> bytes:
        """Frame ``content`` (``rlp(msg-id) || msg-data``) for the wire."""
        return self._encode(content)

    def _encode(self, *content: bytes | memoryview) -> bytes:
        # The pieces are encrypted and MACed one after another (AES-CTR and keccak are
        # streams), so a megabyte payload is not copied into one buffer first.
        size = sum(len(c) for c in content)
        if size > self.max_frame_size:
            raise FrameError(f"frame of {size} bytes exceeds the {self.max_frame_size}-byte limit")
        header = size.to_bytes(3, "big") + _HEADER_DATA
        header_ct = self._enc.update(header + bytes(HEADER_SIZE - len(header)))
        header_mac = self._egress.header_mac(header_ct)
        pad = _pad16(size) - size
        cts = [self._enc.update(c) for c in content if len(c)]
        if pad:
            cts.append(self._enc.update(bytes(pad)))
        frame_mac = self._egress.frame_mac(*cts)
        return b"".join((header_ct, header_mac, *cts, frame_mac))

    # ---- ingress --------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, memoryview]]:
        """Add received bytes; return the messages of every frame now complete."""
        if self._broken:
            raise FrameError("frame codec already failed; the connection must be closed")
        self._buf += data
        out: list[tuple[int, memoryview]] = []
        try:
            while True:
                content = self._next_frame()
                if content is None:
                    return out
                message = _split_message(content)
                if message[0] >= self._handshake_ends_at:
                    self.in_handshake = False
                out.append(message)
        except FrameError:
            self._broken = True
            raise

    def _next_frame(self) -> memoryview | None:
        buf = self._buf
        if self._frame_size is None:
            if len(buf) < HEADER_SIZE + MAC_SIZE:
                return None
            header_ct = bytes(buf[:HEADER_SIZE])
            want = self._ingress.header_mac(header_ct)
            if want != buf[HEADER_SIZE : HEADER_SIZE + MAC_SIZE]:
                raise FrameError("bad header MAC")
            header = self._dec.update(header_ct)
            size = int.from_bytes(header[:3], "big")
            if size == 0:
                raise FrameError("empty frame")
            limit = self.max_frame_size
            if self.in_handshake and self.max_first_frame_size is not None:
                limit = min(limit, self.max_first_frame_size)
            if size > limit:
                which = "frame"
                if self.in_handshake:
                    which = "first frame" if self.frames_read == 0 else "handshake frame"
                raise FrameError(f"{which} of {size} bytes exceeds the {limit}-byte limit")
            self.frames_read += 1
            # header-data (capability-id, context-id) is ignored, as geth does.
            del buf[: HEADER_SIZE + MAC_SIZE]
            self._frame_size = size
        size = self._frame_size
        padded = _pad16(size)
        if len(buf) < padded + MAC_SIZE:
            return None
        frame_ct = memoryview(buf)[:padded]
        try:
            want = self._ingress.frame_mac(frame_ct)
            if want != buf[padded : padded + MAC_SIZE]:
                raise FrameError("bad frame MAC")
            plain = self._dec.update(frame_ct)
        finally:
            frame_ct.release()
        del buf[: padded + MAC_SIZE]
        self._frame_size = None
        return memoryview(plain)[:size]


def _split_message(content: memoryview) -> tuple[int, memoryview]:
    """Split frame content into the message id (an RLP integer) and the message data."""
    first = content[0]
    if first < 0x80:
        return first, content[1:]
    if first == 0x80:
        return 0, content[1:]
    if first <= 0x88:
        n = first - 0x80
        raw = bytes(content[1 : 1 + n])
        if len(raw) != n:
            raise FrameError("truncated message id")
        if n == 1 and raw[0] < 0x80:
            raise FrameError("non-canonical message id")
        try:
            return rlp.decode_int(raw), content[1 + n :]
        except rlp.RLPError as exc:
            raise FrameError(f"bad message id: {exc}") from None
    raise FrameError("message id is not an RLP integer")
