"""The Cedar schema every policy is validated against: Bastion's entities, actions and context."""

from __future__ import annotations

from functools import cache

import cedarpy

#: Namespace of every Bastion entity type and action.
NAMESPACE = "Bastion"

#: Actions a policy may name, as ``Bastion::Action::"<name>"``.
ACTIONS: tuple[str, ...] = (
    "invoke_model",
    "use_feature",
    "call_tool",
    "read_document",
    "export_audit",
    "approve",
)

#: Resource types, with the attributes each carries and the value used when a caller leaves one out.
RESOURCE_ATTRIBUTES: dict[str, dict[str, object]] = {
    "Model": {"provider": "", "kind": "chat"},
    "Provider": {"tier": "api", "region": ""},
    "Tool": {"server": "", "risk_tier": "high"},
    "Feature": {"risk_tier": "high"},
    "Collection": {"classification": "internal", "readers": []},
}

SCHEMA_TEXT = """
namespace Bastion {
  // What the provider's terms and hosting allow; filled from the provider registry.
  type ProviderInfo = {
    name: String,
    tier: String,                  // consumer | enterprise | api | on_prem
    region: String,                // Bastion's label, e.g. "eu-west-1", "us-east-1"
    zero_data_retention: Bool,
    baa: Bool,
    trains_on_inputs: Bool,
    certifications: Set<String>,
  };

  type RequestContext = {
    data_classes: Set<String>,     // pii, phi, pci, credentials, financial ...
    entity_types: Set<String>,     // EMAIL_ADDRESS, US_SSN, SECRET ...
    injection_score: Long,         // 0..100, the inspection's prompt-injection score in percent
    caller_region: String,
    hour: Long,                    // 0..23 in policy.timezone
    weekday: Long,                 // 1 = Monday .. 7 = Sunday
    request_kib: Long,             // request body size, KiB rounded up
    approved: Bool,                // a person approved this request
    model: String,                 // the model asked for ("" when none)
    provider: ProviderInfo,        // the provider the request would go to (empty when none)
  };

  entity Group;
  entity User in [Group] {
    email: String,
    roles: Set<String>,
    tenant: String,
    region: String,
    auth_method: String,
  } tags String;
  entity Service in [Group] {
    email: String,
    roles: Set<String>,
    tenant: String,
    region: String,
    auth_method: String,
  } tags String;

  entity Provider { tier: String, region: String };
  entity Model in [Provider] { provider: String, kind: String };
  entity Tool { server: String, risk_tier: String };
  entity Feature { risk_tier: String };
  entity Collection { classification: String, readers: Set<Group> };

  action invoke_model appliesTo {
    principal: [User, Service], resource: [Model, Provider], context: RequestContext
  };
  action use_feature appliesTo {
    principal: [User, Service], resource: [Feature], context: RequestContext
  };
  action call_tool appliesTo {
    principal: [User, Service], resource: [Tool], context: RequestContext
  };
  action read_document appliesTo {
    principal: [User, Service], resource: [Collection], context: RequestContext
  };
  action export_audit appliesTo {
    principal: [User, Service], resource: [Collection, Feature], context: RequestContext
  };
  action approve appliesTo {
    principal: [User, Service], resource: [Model, Tool, Feature, Collection], context: RequestContext
  };
}
"""


@cache
def bastion_schema() -> cedarpy.Schema:
    """The parsed schema (parsed once, on first use)."""
    return cedarpy.Schema.from_str(SCHEMA_TEXT)
