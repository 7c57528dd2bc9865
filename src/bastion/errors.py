"""The exception tree, and how each error looks to a client.

    BastionError                      500 internal_error
    ├── InvalidRequest                400 invalid_request  (bad JSON, wrong types)
    │   ├── ContentFiltered           400 content_filter   (refused for its content)
    │   └── UnknownModel              404 model_not_found
    ├── RequestTooLarge               413 request_too_large
    ├── AuthenticationFailed          401 invalid_api_key / invalid_token
    ├── PermissionDenied              403 permission_denied / policy_denied
    ├── RateLimited                   429 rate_limit_exceeded (Retry-After)
    ├── UpstreamFailed                502 upstream_error
    │   └── UpstreamTimeout           504 upstream_timeout
    ├── ServiceUnavailable            503 service_unavailable
    │   ├── AuditUnavailable          503 audit_unavailable
    │   └── LimitsUnavailable         503 limits_unavailable
    └── ConfigError                   (start-up only, never sent to clients)

Every error maps to the OpenAI error shape ``{"error": {"message", "type",
"code", "param"}}``. Messages are written for the caller: they never carry
secrets, stack traces, table names, upstream addresses or key material.
"""

from __future__ import annotations

from typing import Any


class BastionError(Exception):
    """Base of every error Bastion raises across module boundaries."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str = "internal_error"
    default_message: str = "The gateway could not complete the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.param = param
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)

    def to_body(self, request_id: str | None = None) -> dict[str, Any]:
        """The OpenAI-shaped JSON body a client receives."""
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "param": self.param,
        }
        err.update(self.details)
        if request_id:
            err["request_id"] = request_id
        return {"error": err}


class InvalidRequest(BastionError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"
    default_message = "The request is not valid."


class ContentFiltered(InvalidRequest):
    code = "content_filter"
    default_message = "The request was refused because of its content."


class UnknownModel(InvalidRequest):
    status_code = 404
    code = "model_not_found"
    default_message = "The model does not exist or you do not have access to it."


class RequestTooLarge(BastionError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"
    default_message = "The request body is larger than this gateway accepts."


class AuthenticationFailed(BastionError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"
    default_message = "Missing or invalid credentials."


class PermissionDenied(BastionError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"
    default_message = "You are not allowed to do this."


class RateLimited(BastionError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    default_message = "Rate limit exceeded."


class UpstreamFailed(BastionError):
    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    default_message = "The model provider returned an error."


class UpstreamTimeout(UpstreamFailed):
    status_code = 504
    code = "upstream_timeout"
    default_message = "The model provider did not answer in time."


class ServiceUnavailable(BastionError):
    status_code = 503
    error_type = "server_error"
    code = "service_unavailable"
    default_message = "The gateway is not able to serve requests right now."


class AuditUnavailable(ServiceUnavailable):
    code = "audit_unavailable"
    default_message = "The request was refused because it could not be recorded."


class LimitsUnavailable(ServiceUnavailable):
    code = "limits_unavailable"
    default_message = "The request was refused because usage limits could not be checked."


class ConfigError(Exception):
    """A configuration problem found at start-up; never sent to a client."""
