"""The tool proxy's HTTP routes: /mcp, /v1/tools..., and the well-known documents clients and backends read.

    GET  /.well-known/oauth-protected-resource[/mcp]   RFC 9728 metadata of the MCP resource
    GET  /.well-known/jwks.json                         the keys tool backends verify Bastion's tokens with
    POST /mcp                                           MCP (Streamable HTTP, JSON answers)
    GET  /v1/tools                                      the tools the caller may call
    POST /v1/tools/{name}/invoke                        call one (JSON arguments); 202 when held
    GET  /v1/tools/approvals/{id}                       poll a held call
    POST /v1/tools/approvals/{id}/execute               run an approved call, exactly once
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.context import Principal, new_request_id
from bastion.errors import AuthenticationFailed, BastionError, InvalidRequest, PermissionDenied
from bastion.tools.mcp.server import McpEndpoint, read_limited
from bastion.tools.proxy import ToolCall, ToolOutcome
from bastion.tools.service import MCP_PATH, RESOURCE_METADATA_PATH, WORKFLOW_HEADER

if TYPE_CHECKING:
    from bastion.tools.service import ToolService


def _rid(request: Request) -> str:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else new_request_id()


def error_response(request: Request, exc: BastionError, service: ToolService) -> Response:
    """The OpenAI-shaped error, with the challenge headers an OAuth client needs."""
    headers = dict(exc.headers)
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = f'Bearer resource_metadata="{service.resource_metadata_url}"' + (
            "" if exc.code == "missing_credentials" else ', error="invalid_token"'
        )
    if isinstance(exc, PermissionDenied) and exc.code == "insufficient_scope":
        missing = " ".join(exc.details.get("missing_scopes", []))
        headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{missing}"'
    rid = request.scope.get("state", {}).get("request_id")
    return JSONResponse(exc.to_body(rid), status_code=exc.status_code, headers=headers)


def outcome_body(outcome: ToolOutcome) -> dict[str, Any]:
    """A finished call as the REST door answers it."""
    body: dict[str, Any] = {"tool": outcome.tool, "request_id": outcome.request_id, "status": "done",
                            "is_error": outcome.is_error, "result": outcome.result}
    if outcome.approval is not None:
        body["approval"] = outcome.approval.to_json()
    return body


def routes(service: ToolService) -> list[BaseRoute]:
    """The routes above, bound to ``service``."""
    mcp = McpEndpoint(service)

    async def guarded(request: Request, handler: Any) -> Response:
        try:
            result: Response = await handler(request)
            return result
        except BastionError as exc:
            return error_response(request, exc, service)

    async def resource_metadata(request: Request) -> Response:
        return JSONResponse(service.resource_metadata(), headers={"Cache-Control": "public, max-age=300"})

    async def jwks(request: Request) -> Response:
        return service.minter.jwks_response()

    async def list_tools(request: Request) -> Response:
        principal = await service.authenticate(request)
        await service.ensure_discovered()
        visible = service.proxy.registry.visible_to(principal, service.policy.engine)
        return JSONResponse({"object": "list", "data": [t.summary() for t in visible]})

    async def invoke(request: Request) -> Response:
        principal = await service.authenticate(request)
        body = await read_limited(request, service.settings.tools.proxy.max_request_bytes)
        try:
            arguments = json.loads(body) if body.strip() else {}
        except ValueError:
            raise InvalidRequest("The body must be a JSON object of tool arguments.") from None
        if isinstance(arguments, dict) and set(arguments) == {"arguments"} and isinstance(arguments["arguments"], dict):
            arguments = arguments["arguments"]  # also accept {"arguments": {...}}
        if not isinstance(arguments, dict):
            raise InvalidRequest("The body must be a JSON object of tool arguments.", code="invalid_arguments")
        workflow = request.headers.get(WORKFLOW_HEADER)
        await service.workflows.admit(principal, workflow)
        await service.ensure_discovered()
        call = ToolCall(
            principal=principal, tool=request.path_params["name"], arguments=arguments, request_id=_rid(request),
            channel="rest", actor=service.actor_of(request, principal), workflow_id=workflow,
            subject_token=service.subject_token_of(request, principal),
        )
        outcome = await service.proxy.invoke(call)
        if outcome.status == "held":
            assert outcome.approval is not None
            record = outcome.approval
            location = f"/v1/tools/approvals/{record.id}"
            return JSONResponse(
                {"status": "held", "approval": record.to_json(), "poll": location,
                 "execute": location + "/execute", "request_id": call.request_id},
                status_code=202, headers={"Location": location},
            )
        return JSONResponse(outcome_body(outcome))

    async def own_approval(request: Request, principal: Principal) -> Any:
        record = await service.proxy.approvals.get(request.path_params["approval_id"])
        if record is None or (record.requester != principal.subject
                              and not service.may_review(principal, record.tool)):
            raise PermissionDenied("No such approval request, or it is not yours.", code="approval_not_found")
        return record

    async def poll(request: Request) -> Response:
        principal = await service.authenticate(request)
        record = await own_approval(request, principal)
        if record.state == "approved" and service.settings.tools.approvals.auto_execute \
                and record.requester == principal.subject:
            outcome = await service.proxy.execute_approved(record.id, principal, request_id=_rid(request))
            return JSONResponse(outcome_body(outcome))
        return JSONResponse({"approval": record.to_json()})

    async def execute(request: Request) -> Response:
        principal = await service.authenticate(request)
        outcome = await service.proxy.execute_approved(
            request.path_params["approval_id"], principal, request_id=_rid(request)
        )
        return JSONResponse(outcome_body(outcome))

    async def mcp_endpoint(request: Request) -> Response:
        return await mcp(request)

    def r(path: str, handler: Any, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await guarded(request, handler)

        return Route(path, endpoint, methods=methods)

    return [
        r(RESOURCE_METADATA_PATH, resource_metadata, ["GET"]),
        r(RESOURCE_METADATA_PATH + MCP_PATH, resource_metadata, ["GET"]),
        r("/.well-known/jwks.json", jwks, ["GET"]),
        Route(MCP_PATH, mcp_endpoint, methods=["GET", "POST", "DELETE"]),
        r("/v1/tools", list_tools, ["GET"]),
        r("/v1/tools/{name}/invoke", invoke, ["POST"]),
        r("/v1/tools/approvals/{approval_id}", poll, ["GET"]),
        r("/v1/tools/approvals/{approval_id}/execute", execute, ["POST"]),
    ]
