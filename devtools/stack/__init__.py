"""Local PostgreSQL and Redis on loopback under a project-local state directory.

``python -m devtools.stack install|up|down|status|env``. Tests use :class:`Stack` directly with free ports
and a temporary state directory, so two stacks never collide.
"""

from devtools.stack.postgres import PostgresServer, find_pg_bindir
from devtools.stack.redis import RedisServer, find_redis_server
from devtools.stack.stack import Stack, StackInfo

__all__ = ["PostgresServer", "RedisServer", "Stack", "StackInfo", "find_pg_bindir", "find_redis_server"]
