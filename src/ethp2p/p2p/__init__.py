"""The devp2p base protocol ("p2p"): Hello, Disconnect, Ping/Pong and capability negotiation."""
