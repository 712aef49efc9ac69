"""A function's @retry policy as the host receives it (the engine's metadata), and its exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass

from devhost.worker import worker


@dataclass(frozen=True)
class RetryPolicy:
    """A function's `@retry` exponential-backoff policy, read from its indexed settings."""

    max_retries: int
    minimum_s: float
    maximum_s: float

    @classmethod
    def of(cls, function_name: str) -> RetryPolicy:
        """The policy as the host receives it, in the function's metadata from the worker engine (-1: indefinite)."""
        options = worker().metadata[function_name].retry_options
        return cls(
            max_retries=int(options.max_retry_count),
            minimum_s=options.minimum_interval.ToTimedelta().total_seconds(),
            maximum_s=options.maximum_interval.ToTimedelta().total_seconds(),
        )

    def delay_s(self, attempt: int) -> float:
        return float(min(self.minimum_s * 2 ** min(attempt - 1, 62), self.maximum_s))

    def allows(self, attempt: int) -> bool:
        """Whether retry number `attempt` (from 1) is within the policy; a count of -1 retries forever."""
        return self.max_retries < 0 or attempt <= self.max_retries
