"""One module per scenario; each exposes ``async def run(env: BenchEnv) -> list[Row]``."""
