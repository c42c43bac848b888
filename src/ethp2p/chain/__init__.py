"""Chain types: headers, bodies, receipts, roots, verification, genesis blocks.

Pure functions; only ``genesis.load_genesis`` reads a file."""
