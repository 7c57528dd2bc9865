"""The admin API for reviewers: list approval requests and approve or deny them with a comment.

    GET  /admin/approvals[?state=pending&limit=100]
    GET  /admin/approvals/{id}
    POST /admin/approvals/{id}/approve   {"comment": "..."}
    POST /admin/approvals/{id}/deny      {"comment": "..."}

Only reviewers (a reviewer role, and policy's ``approve`` action) may call
these, and never on their own requests (separation of duties).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.context import Principal
from bastion.errors import BastionError, InvalidRequest, PermissionDenied
from bastion.http.tools_api import error_response
from bastion.tools.approvals import MAX_COMMENT_CHARS, MAX_LIST
from bastion.tools.mcp.server import read_limited

if TYPE_CHECKING:
    from bastion.tools.service import ToolService

#: Largest decision body accepted, in bytes.
MAX_DECISION_BYTES = 16 * 1024
_STATES = frozenset({"pending", "approved", "denied", "expired", "executing", "done", "failed"})


def routes(service: ToolService) -> list[BaseRoute]:
    """The admin routes, bound to ``service``."""

    async def reviewer(request: Request, tool: str = "*") -> Principal:
        principal = await service.authenticate(request)
        if not service.may_review(principal, tool):
            raise PermissionDenied("Only reviewers may see and decide approval requests.", code="not_a_reviewer")
        return principal

    async def list_approvals(request: Request) -> Response:
        await reviewer(request)
        state = request.query_params.get("state")
        if state is not None and state not in _STATES:
            raise InvalidRequest(f"state must be one of {', '.join(sorted(_STATES))}.")
        raw_limit = request.query_params.get("limit", "100")
        if not raw_limit.isdigit():
            raise InvalidRequest("limit must be a whole number.")
        records = await service.proxy.approvals.list(state=state, limit=min(int(raw_limit), MAX_LIST))
        return JSONResponse({"object": "list", "data": [r.to_json() for r in records]})

    async def show(request: Request) -> Response:
        await reviewer(request)
        record = await service.proxy.approvals.get(request.path_params["approval_id"])
        if record is None:
            raise InvalidRequest("No such approval request.", code="approval_not_found")
        return JSONResponse(record.to_json())

    async def decide(request: Request, approve: bool) -> Response:
        approval_id = request.path_params["approval_id"]
        current = await service.proxy.approvals.get(approval_id)
        principal = await reviewer(request, current.tool if current is not None else "*")
        body = await read_limited(request, MAX_DECISION_BYTES)
        try:
            data: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            raise InvalidRequest("The body must be JSON: {\"comment\": \"...\"}.") from None
        comment = data.get("comment", "") if isinstance(data, dict) else None
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
            raise InvalidRequest(f"comment must be a string of at most {MAX_COMMENT_CHARS} characters.")
        if not approve and not comment.strip():
            raise InvalidRequest("Say why the request is denied (comment).", code="comment_required")
        record = await service.proxy.approvals.decide(approval_id, principal, approve=approve, comment=comment)
        await service.proxy.record_decision(record, principal)
        # The call itself runs for the requester (execute, or their next poll with auto_execute),
        # so its result goes to them and never to the reviewer.
        return JSONResponse({"approval": record.to_json()})

    async def approve(request: Request) -> Response:
        return await decide(request, True)

    async def deny(request: Request) -> Response:
        return await decide(request, False)

    def r(path: str, handler: Any, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                result: Response = await handler(request)
                return result
            except BastionError as exc:
                return error_response(request, exc, service)

        return Route(path, endpoint, methods=methods)

    return [
        r("/admin/approvals", list_approvals, ["GET"]),
        r("/admin/approvals/{approval_id}", show, ["GET"]),
        r("/admin/approvals/{approval_id}/approve", approve, ["POST"]),
        r("/admin/approvals/{approval_id}/deny", deny, ["POST"]),
    ]

