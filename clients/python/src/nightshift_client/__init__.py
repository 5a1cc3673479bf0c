"""Nightshift's Python client: the generated client (``nightshift_client.generated``) with a thin
layer for tokens, idempotency keys, Retry-After and waiting (``Nightshift``, ``AsyncNightshift``)."""

from ._client import AUTO, FINAL_STATES, AsyncNightshift, Nightshift, NightshiftError
from .generated.models import JobKind

__all__ = ["AUTO", "FINAL_STATES", "AsyncNightshift", "JobKind", "Nightshift", "NightshiftError"]
