"""`python -m services.fetcher`: run the fetcher service until SIGTERM."""

from runtime.server import run
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings

if __name__ == "__main__":
    raise SystemExit(run(FetcherSettings, FetcherService, lambda s: s.fetcher_port, "fetcher"))
