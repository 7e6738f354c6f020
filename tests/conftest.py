"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from counting_listener import CountingListener


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    """A listener on 127.0.0.1 counting connections, closed after the test."""
    running = CountingListener()
    yield running
    running.close()
