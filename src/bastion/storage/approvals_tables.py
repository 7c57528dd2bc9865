"""The approvals table: tool calls held for a person's decision (created by migration 0002)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, String, Table, Text

from bastion.storage.tables import metadata

#: One held tool call. ``state`` moves pending -> approved|denied|expired, approved -> executing -> done|failed.
approvals = Table(
    "tool_approvals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("tool", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("requester", String(256), nullable=False),
    Column("requester_json", Text, nullable=False),  # the principal as audited: subject, groups, roles
    Column("request_id", String(64), nullable=False),
    Column("workflow_id", String(128), nullable=True),
    Column("reason", Text, nullable=False),
    Column("arguments_redacted", Text, nullable=False),  # JSON, sensitive values replaced
    Column("arguments_sha256", String(64), nullable=False),
    Column("arguments_sealed", Text, nullable=False),  # the exact arguments, encrypted for the execution
    Column("policy_version", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_by", String(256), nullable=True),
    Column("decided_at", Float, nullable=True),
    Column("comment", Text, nullable=True),
    Column("executed_at", Float, nullable=True),
    Column("outcome", Text, nullable=True),  # JSON summary of the execution (status, result hash)
    Index("ix_tool_approvals_state", "state", "created_at"),
    Index("ix_tool_approvals_requester", "requester"),
)
