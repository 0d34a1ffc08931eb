"""The dev stack starts a real PostgreSQL and Redis, and stopping leaves no process behind."""

from __future__ import annotations

import shutil

import asyncpg
import pytest
import redis.asyncio as aioredis

from devtools.stack import Stack, StackInfo
from devtools.stack.proc import pid_alive
from tests.conftest import make_state_dir

pytestmark = pytest.mark.integration


async def test_stack_up_query_ping_down() -> None:
    state = make_state_dir()
    stack = Stack(state)
    try:
        info = stack.up()
        assert info.postgres_pid
        assert info.redis_pid
        conn = await asyncpg.connect(info.postgres_dsn)
        try:
            assert await conn.fetchval("SELECT 40 + 2") == 42
        finally:
            await conn.close()
        client = aioredis.from_url(info.redis_url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
        # a second `up` on a running stack is a no-op that reports the same servers
        assert Stack(state).up().postgres_pid == info.postgres_pid
    finally:
        stack.down()
    assert not pid_alive(info.postgres_pid)
    assert not pid_alive(info.redis_pid)
    shutil.rmtree(state, ignore_errors=True)


def test_two_stacks_do_not_collide(stack: StackInfo) -> None:
    state = make_state_dir()
    other = Stack(state)
    try:
        info = other.up()
        assert info.postgres_pid
        assert info.redis_pid
        assert info.postgres_port != stack.postgres_port
        assert info.redis_port != stack.redis_port
    finally:
        other.down()
        shutil.rmtree(state, ignore_errors=True)
