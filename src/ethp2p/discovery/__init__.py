"""Node discovery: discv4 (with ENR) and DNS node lists (EIP-1459)."""
