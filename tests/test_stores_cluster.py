"""The Redis store on a real Redis Cluster: three primaries this test starts and stops.

The nodes run from the installed redis-server on free loopback ports in a temporary
folder, the cluster is created with `redis-cli --cluster create`, the whole conformance
suite runs against `redis+cluster://...`, and only the processes started here are stopped.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from services import RedisNode, redis_cluster
from store_suite import StoreSuite, Subject, dumps, generate_project, imported


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("cluster")
    generate_project(root, stores="memory,redis", package="clusterapp.sessions")
    with imported(root, "clusterapp.sessions") as package:
        yield package


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisNode]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster-nodes")) as nodes:
        yield nodes


def cluster_url(nodes: list[RedisNode], prefix: str) -> str:
    hosts = ",".join(f"127.0.0.1:{node.port}" for node in nodes)
    return f"redis+cluster://{hosts}/?prefix={prefix}"


@pytest.fixture
async def store(sessions: ModuleType, cluster: list[RedisNode], clock: Any) -> AsyncIterator[Subject]:
    url = cluster_url(cluster, f"skcluster{secrets.token_hex(6)}")
    redis_store = sessions.open_store(url, clock=clock, idle_timeout=timedelta(minutes=30))

    async def raw_dump() -> str:
        return dumps(await redis_store.dump())

    async def corrupt(session_id: str) -> None:
        await redis_store.client.hset(redis_store._session_key(session_id), "r", "[not json")

    try:
        yield Subject("redis-cluster", redis_store, raw_dump, corrupt)
    finally:
        await redis_store.delete_all()
        await redis_store.close()


class TestRedisCluster(StoreSuite):
    pass


@pytest.mark.anyio
async def test_sessions_are_spread_over_the_primaries(sessions: ModuleType, store: Subject, clock: Any) -> None:
    from redis.asyncio.cluster import RedisCluster

    client = store.store.client
    assert isinstance(client, RedisCluster)
    for index in range(30):
        await store.store.create(
            sessions.SessionRecord(
                session_id=f"spread{index}",
                secret_hash="0" * 64,
                data={},
                principal=sessions.SessionPrincipal("user", f"u{index % 3}"),
                created_at=clock.now,
                last_seen_at=clock.now,
                expires_at=clock.now + timedelta(hours=1),
            )
        )
    owners = {client.get_node_from_key(key).name for key in (await store.store.dump())}
    assert len(owners) == 3
