"""Fetching verified history from peers: chunked request helpers and ``fetch_payloads_for_peer``."""

from .head import DiscoveredHead, discover_head_p2p, re_probe_peer_head
from .payloads import fetch_payloads_for_peer
from .requests import (
    MAX_HEADERS_PER_REQUEST,
    request_bodies_chunked_partial_with_stats,
    request_headers_batch,
    request_headers_chunked_strict,
    request_headers_chunked_with_stats,
    request_receipts,
    request_receipts_chunked_partial_with_stats,
)
from .types import (
    BlockPayload,
    ChunkedResponse,
    Fault,
    FetchError,
    FetchPeer,
    FetchStageStats,
    HeaderCountMismatch,
    HeadersChunkedResponse,
    InvalidResponse,
    PayloadFetchOutcome,
    ReceiptsResult,
)

__all__ = [
    "DiscoveredHead",
    "discover_head_p2p",
    "re_probe_peer_head",
    "BlockPayload",
    "ChunkedResponse",
    "Fault",
    "FetchError",
    "FetchPeer",
    "FetchStageStats",
    "HeaderCountMismatch",
    "HeadersChunkedResponse",
    "InvalidResponse",
    "MAX_HEADERS_PER_REQUEST",
    "PayloadFetchOutcome",
    "ReceiptsResult",
    "fetch_payloads_for_peer",
    "request_bodies_chunked_partial_with_stats",
    "request_headers_batch",
    "request_headers_chunked_strict",
    "request_headers_chunked_with_stats",
    "request_receipts",
    "request_receipts_chunked_partial_with_stats",
]
