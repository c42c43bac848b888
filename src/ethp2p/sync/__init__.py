"""Range sync: fetching block ranges from many peers into a store."""
