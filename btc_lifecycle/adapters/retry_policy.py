"""How hard the adapters try an outside service again, and where they say so: shared by the
exchange client and the archive downloads, without importing either."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    initial_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_seconds, self.initial_seconds * 2**attempt)
        return backoff if retry_after is None else max(backoff, retry_after)
