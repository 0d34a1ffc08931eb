"""`python -m services.store`: run the store service until SIGTERM."""

from runtime.server import run
from services.store.service import StoreService
from services.store.settings import StoreSettings

if __name__ == "__main__":
    raise SystemExit(run(StoreSettings, StoreService, lambda s: s.store_port, "store"))
