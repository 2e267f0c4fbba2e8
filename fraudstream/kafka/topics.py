"""Topic administration shared by the demo, the evaluator and the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

CREATE_TIMEOUT_MS = 15000


@contextlib.asynccontextmanager
async def admin_client(
    bootstrap: str, security: Mapping[str, Any] | None, request_timeout_ms: int
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit (every topic lookup and creation uses one)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms, **(security or {})
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create the topics that do not exist yet, with ``partitions`` partitions each."""
    async with admin_client(bootstrap, security, CREATE_TIMEOUT_MS) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
                )


def ensure_topics_sync(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Blocking wrapper of :func:`ensure_topics` for scripts and fixtures."""
    asyncio.run(ensure_topics(bootstrap, list(names), partitions, security))
