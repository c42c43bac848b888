"""Peers: live eth sessions, the peer pool, dialing/listening limits, reputation and the peer cache."""
