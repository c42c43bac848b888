"""The eth wire protocol (eth/68, eth/69, eth/70): message types, codecs, Status, fork ids and networks."""
