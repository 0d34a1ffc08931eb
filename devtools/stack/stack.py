"""PostgreSQL + Redis together, with a JSON file describing the running stack."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from devtools.stack.postgres import PostgresServer
from devtools.stack.proc import free_port
from devtools.stack.redis import RedisServer


@dataclass(frozen=True)
class StackInfo:
    """Addresses and pids of a running stack (written to ``state_dir/stack.json``)."""

    state_dir: str
    postgres_port: int
    postgres_dsn: str
    postgres_pid: int | None
    redis_port: int
    redis_url: str
    redis_pid: int | None

    def env(self) -> dict[str, str]:
        """Settings that point the services at this stack."""
        return {"STORYWIRE_DATABASE_URL": self.postgres_dsn, "STORYWIRE_REDIS_URL": self.redis_url}


class Stack:
    """Start and stop both servers; ports default to free ones and are remembered in stack.json."""

    def __init__(self, state_dir: Path, postgres_port: int = 0, redis_port: int = 0) -> None:
        self.state_dir = state_dir.resolve()
        saved = self._load()
        self.postgres = PostgresServer(
            self.state_dir, postgres_port or (saved.postgres_port if saved else 0) or free_port()
        )
        self.redis = RedisServer(
            self.state_dir, redis_port or (saved.redis_port if saved else 0) or free_port()
        )

    @property
    def info_file(self) -> Path:
        return self.state_dir / "stack.json"

    def _load(self) -> StackInfo | None:
        try:
            return StackInfo(**json.loads((self.state_dir / "stack.json").read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def info(self) -> StackInfo:
        return StackInfo(
            state_dir=str(self.state_dir),
            postgres_port=self.postgres.port,
            postgres_dsn=self.postgres.dsn,
            postgres_pid=self.postgres.pid(),
            redis_port=self.redis.port,
            redis_url=self.redis.url,
            redis_pid=self.redis.pid(),
        )

    def up(self) -> StackInfo:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)
        try:
            self.postgres.start()
            self.redis.start()
        except BaseException:
            self.down()
            raise
        info = self.info()
        self.info_file.write_text(json.dumps(asdict(info), indent=2) + "\n")
        return info

    def down(self) -> None:
        """Stop both (each by its own pid); safe to call when nothing runs."""
        errors: list[BaseException] = []
        for server in (self.redis, self.postgres):
            try:
                server.stop()
            except Exception as exc:  # stop the other one even if this one fails
                errors.append(exc)
        if errors:
            raise errors[0]
