"""The registered tools as the proxy uses them: compiled argument schemas, policy resources, visibility."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from bastion.context import Principal
from bastion.errors import InvalidRequest, PermissionDenied
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyRequest, ResourceRef
from bastion.tools.config import ToolSettings, ToolsSettings
from bastion.tools.tokens import PRINCIPAL_SCOPES_ATTRIBUTE, user_scopes

#: Most schema errors reported back for one call.
MAX_SCHEMA_ERRORS = 5
#: The policy action every tool call is decided under.
CALL_TOOL = "call_tool"
#: The schema a tool gets when the registry declares none.
DEFAULT_SCHEMA: dict[str, Any] = {"type": "object"}
#: Longest description taken from an MCP server, in characters.
MAX_REMOTE_DESCRIPTION = 2000


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    """One tool with its schema compiled once at start-up."""

    settings: ToolSettings
    validator: Any

    @property
    def name(self) -> str:
        """The name clients call the tool by."""
        return self.settings.name

    @property
    def server(self) -> str:
        """Where the tool runs (host of its backend or MCP server), for policy and audit."""
        url = self.settings.mcp_url or self.settings.base_url or ""
        return urlsplit(url).netloc

    def resource(self) -> ResourceRef:
        """The tool as a policy resource."""
        return ResourceRef.tool(self.name, risk_tier=self.settings.risk, server=self.server)

    def validate(self, arguments: Any) -> None:
        """Raise InvalidRequest naming the first problems when ``arguments`` break the schema."""
        if not isinstance(arguments, dict):
            raise InvalidRequest("Tool arguments must be a JSON object.", code="invalid_arguments")
        errors = sorted(self.validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            problems = [
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:200]}"
                for e in errors[:MAX_SCHEMA_ERRORS]
            ]
            raise InvalidRequest(
                "The tool arguments do not match the tool's schema.",
                code="invalid_arguments",
                details={"problems": problems},
            )

    def mcp_descriptor(self) -> dict[str, Any]:
        """The tool as MCP ``tools/list`` shows it."""
        annotations = {
            "readOnlyHint": self.settings.action == "read",
            "destructiveHint": self.settings.action == "delete",
        }
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.settings.description or f"{self.name} (owner: {self.settings.owner})",
            "inputSchema": self.settings.arguments_schema,
            "annotations": annotations,
        }
        return out

    def summary(self) -> dict[str, Any]:
        """The tool as ``bastion tools list`` and ``GET /v1/tools`` show it."""
        s = self.settings
        return {
            "name": s.name,
            "kind": s.kind,
            "description": s.description,
            "owner": s.owner,
            "risk": s.risk,
            "action": s.action,
            "scopes": list(s.scopes),
            "data_classes": list(s.data_classes),
            "enabled": s.is_enabled,
        }


def scopes_with_roles(principal: Principal, role_scopes: Mapping[str, list[str]]) -> Principal:
    """``principal`` with the scopes its groups and roles grant added to those it already holds."""
    extra: set[str] = set()
    for name in (*principal.groups, *principal.roles):
        extra.update(role_scopes.get(name, ()))
    if not extra:
        return principal
    held = sorted(user_scopes(principal) | extra)
    attributes = {**principal.attributes, PRINCIPAL_SCOPES_ATTRIBUTE: held}
    return Principal(
        subject=principal.subject,
        kind=principal.kind,
        email=principal.email,
        groups=principal.groups,
        roles=principal.roles,
        tenant=principal.tenant,
        attributes=attributes,
        auth_method=principal.auth_method,
        key_id=principal.key_id,
        issuer=principal.issuer,
        allowed_models=principal.allowed_models,
    )


class ToolRegistry:
    """Every registered tool, by name."""

    def __init__(self, settings: ToolsSettings) -> None:
        self.settings = settings
        self._tools = {
            t.name: RegisteredTool(t, Draft202012Validator(t.arguments_schema)) for t in settings.registry
        }

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def get(self, name: str) -> RegisteredTool:
        """The tool called ``name``; unknown tools are refused like forbidden ones (no probing)."""
        tool = self._tools.get(name)
        if tool is None:
            raise PermissionDenied("No such tool, or you may not call it.", code="tool_not_found")
        return tool

    def visible_to(self, principal: Principal, engine: PolicyEngine) -> list[RegisteredTool]:
        """The enabled tools policy lets ``principal`` call (or hold for approval), in name order."""
        out = []
        for tool in sorted(self._tools.values(), key=lambda t: t.name):
            if not tool.settings.is_enabled:
                continue
            decision = engine.decide(PolicyRequest(principal, CALL_TOOL, tool.resource(), {}))
            if decision.allowed or decision.require_approval:
                out.append(tool)
        return out

    def needs_discovery(self, tool: RegisteredTool) -> bool:
        """Whether an MCP tool left its description or schema to its server."""
        s = tool.settings
        return s.kind == "mcp" and (not s.description or s.arguments_schema == DEFAULT_SCHEMA)

    def adopt_remote(self, name: str, remote: dict[str, Any]) -> bool:
        """Take the description and input schema an MCP server gives, where the registry left them out.

        What the registry declares always wins; a schema that is not valid JSON Schema is ignored.
        """
        tool = self._tools[name]
        update: dict[str, Any] = {}
        description = remote.get("description")
        if not tool.settings.description and isinstance(description, str):
            update["description"] = description[:MAX_REMOTE_DESCRIPTION]
        schema = remote.get("inputSchema")
        if tool.settings.arguments_schema == DEFAULT_SCHEMA and isinstance(schema, dict):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError:
                schema = None
            if schema is not None:
                update["arguments_schema"] = schema
        if not update:
            return False
        settings = tool.settings.model_copy(update=update)
        self._tools[name] = RegisteredTool(settings, Draft202012Validator(settings.arguments_schema))
        return True

    def names(self) -> Iterable[str]:
        """Names of every registered tool."""
        return self._tools.keys()
