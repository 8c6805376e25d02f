"""The one error hierarchy of pcref-mcp.

Every layer raises these and nothing else crosses a layer boundary, so the MCP surface can turn any
failure into one clear sentence for the person: what went wrong, what is allowed, what to do next.
``str(error)`` is always safe to show: it never carries a token, a secret or a request body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PcrefError(Exception):
    """Base class. ``hint`` says what the person (or the model) can do about it."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


# --- bad input: raised before anything is sent --------------------------------------------------


class InvalidInput(PcrefError):
    """A value the caller gave breaks a rule; names the field, the value and what is allowed."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        allowed: Sequence[Any] | str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.value = value
        self.allowed = allowed


class Ambiguous(InvalidInput):
    """A reference or value that names several things: the person chooses. ``readings`` are (label,
    value) pairs; the MCP layer offers the caller's own call once per reading (server.inputs)."""

    def __init__(self, message: str, *, field: str, readings: Sequence[tuple[str, Any]], hint: str) -> None:
        super().__init__(message, field=field, hint=hint)
        self.readings = list(readings)


class Answered(PcrefError):
    """Not an error: a planner found the whole answer (nothing to change), which ``answer`` holds.
    The tool's guard (server.inputs.GuardedTool) returns it as a normal, successful result."""

    def __init__(self, message: str, answer: Any) -> None:
        super().__init__(message)
        self.answer = answer


class LifecycleViolation(InvalidInput):
    """A status/substatus change the referral lifecycle does not allow."""


class NotEligible(InvalidInput):
    """A deal registration whose preconditions are not met; ``unmet`` lists every one at once."""

    def __init__(self, message: str, *, unmet: Sequence[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.unmet = list(unmet)


class ConfigError(PcrefError):
    """Settings that cannot work (missing tenant, unreadable config file, bad value)."""


class SignInError(PcrefError):
    """Sign-in is not set up, was refused, or the cached account has expired."""


class ClaimsChallenge(SignInError):
    """Conditional Access (MFA, a compliant device…) wants more before Partner Center may be called.

    ``claims`` is the JSON claims request from Microsoft Entra; the team server hands it back to the
    client as an ``insufficient_claims`` challenge so the person signs in again and satisfies it.
    """

    def __init__(self, message: str, *, claims: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.claims = claims


# --- the service answered with an error -----------------------------------------------------------


class ServiceError(PcrefError):
    """Partner Center (or the sandbox) answered with an HTTP error.

    Carries the service's own ``code`` and message, the HTTP ``status`` and the correlation id the
    person can quote to Microsoft support.
    """

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        request_id: str | None = None,
        target: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        if status is not None:
            self.status = status
        self.code = code
        self.correlation_id = correlation_id
        self.request_id = request_id
        self.target = target

    def __str__(self) -> str:
        text = super().__str__()
        ids = [f"correlation id {self.correlation_id}"] if self.correlation_id else []
        if self.request_id and self.request_id != self.correlation_id:
            ids.append(f"request id {self.request_id}")
        return text + (f" ({', '.join(ids)})" if ids else "")


class BadRequest(ServiceError):
    status = 400


class AuthenticationRequired(ServiceError):
    status = 401
    hint = "Sign in again with `pcref-mcp login`."


class PermissionDenied(ServiceError):
    status = 403
    hint = (
        "The signed-in user needs the Referrals Admin or Referrals User role in Partner Center "
        "(and must be on the referral's team for Referrals User)."
    )


class NotFound(ServiceError):
    status = 404


class MethodNotAllowed(ServiceError):
    status = 405


class Conflict(ServiceError):
    status = 409


class PreconditionFailed(ServiceError):
    """412: the referral changed since it was read (stale ETag). Nothing was written."""

    status = 412
    hint = "Read the referral again, review what changed, and preview the change anew."


class ResourceModified(PreconditionFailed):
    """409 ``resourceModified`` (the Partner API's other way of saying 412): stale, nothing written."""

    status = 409


class Throttled(ServiceError):
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError):
    """5xx: the service failed; reads are retried, writes are never blindly re-sent."""

    status = 503


class _Correlated(PcrefError):
    """A failure with no service answer to quote, named by the request's correlation id instead,
    which the person can quote to Microsoft support."""

    def __init__(self, message: str, *, correlation_id: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.correlation_id = correlation_id

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (correlation id {self.correlation_id})" if self.correlation_id else text


class NetworkError(_Correlated):
    """No HTTP answer at all (connection refused, dropped, timed out)."""


class WriteOutcomeUnknown(_Correlated):
    """A write failed in a way that leaves its outcome unknown and a look-up could not settle it."""


class SignInExpired(ClaimsChallenge):
    """The person's sign-in expired or was revoked (a password change, a long absence, an admin's
    revocation): they must sign in again. A claims challenge whose ``claims`` ask for a token newer
    than now (``nbf``, as Continuous Access Evaluation does), so the team server answers the client
    with the 401 that makes it sign the person in again."""


class ServerMisconfigured(SignInError):
    """The server's own sign-in set-up is wrong (its credential, its app registration): a task for
    the operator, not for the person. ``code`` and ``correlation_id`` are for the operator's logs."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        correlation_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.correlation_id = correlation_id


class StoreUnavailable(PcrefError):
    """The server's own store (journal, approvals, rate limits) stayed unreachable past its retry
    budget, e.g. a PostgreSQL restart that did not finish in time. Raised before anything is sent;
    an outcome that cannot be recorded after a send is kept and recorded later (see the journal)."""

    hint = "Nothing was sent. Try again in a minute; if it persists, the admin should check the database."


# --- guarded writes --------------------------------------------------------------------------------


class ConfirmationError(PcrefError):
    """A confirm token that is unknown, expired, reused, or bound to another call."""


class StaleConfirmation(ConfirmationError):
    """A valid token whose referral changed after the preview: the person must see it again."""


class UndoNotPossible(PcrefError):
    """A journaled write that cannot be reverted (changed since, closed, never applied)."""


ERRORS_BY_STATUS: dict[int, type[ServiceError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        AuthenticationRequired,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        Throttled,
    )
}


def error_for_status(status: int) -> type[ServiceError]:
    """The exception class for an HTTP status; 5xx map to ServiceUnavailable."""
    if status >= 500:
        return ServiceUnavailable
    return ERRORS_BY_STATUS.get(status, ServiceError)
