"""The errors of the serving layer; only :mod:`serving.api.errors` maps them to HTTP."""

from __future__ import annotations


class ServingError(Exception):
    """Base class of every error raised by :mod:`serving`."""


class InvalidFieldError(ServingError, ValueError):
    """A request field breaks a rule that needs configuration to check (the policy's maximum
    amount, its currency, a product that needs a merchant).

    Args:
        field (tuple[str | int, ...]): location of the field, as in a validation error.
        message (str): what is wrong.
        value (object): the value sent.
    """

    def __init__(self, field: tuple[str | int, ...], message: str, value: object) -> None:
        super().__init__(f"{'.'.join(map(str, field))}: {message}")
        self.field = field
        self.message = message
        self.value = value


class IdempotencyConflictError(ServingError):
    """The application id was already decided for a different request body."""

    def __init__(self, application_id: str) -> None:
        super().__init__(f"application_id {application_id!r} was already scored with a "
                         "different request body")
        self.application_id = application_id


class NotFoundError(ServingError, LookupError):
    """The entity or record asked for does not exist."""


class StateConflictError(ServingError):
    """The request contradicts what is already recorded (a case disposed of otherwise)."""


class UnavailableError(ServingError):
    """The store is needed and is down or slow (no degraded answer exists for this call)."""


class LimitExceededError(ServingError):
    """A caller already holds as many of something as it may (API keys it created)."""
