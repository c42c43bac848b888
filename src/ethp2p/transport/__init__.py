"""asyncio drivers: TCP connections running the sans-IO protocol cores."""
