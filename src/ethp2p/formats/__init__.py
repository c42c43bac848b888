"""History file formats read from disk: era1 archives (e2store) and geth-export RLP chain files."""
