"""Serving history to other peers: request handling by geth's rules and the listening node."""
