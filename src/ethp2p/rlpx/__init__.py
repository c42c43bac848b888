"""RLPx: the encrypted, authenticated transport (sans-IO handshake and framing)."""
