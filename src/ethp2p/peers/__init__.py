"""Peers: live eth sessions, the peer pool, the peer network (dialing, the inbound listener,
limits), reputation, and the peer-book interface the network is given."""
