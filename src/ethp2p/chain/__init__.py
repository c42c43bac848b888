"""Chain types: headers, bodies, receipts, roots and verification (pure, no IO)."""
