"""Held tool calls awaiting human approval.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tool_approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("requester_json", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("arguments_redacted", sa.Text, nullable=False),
        sa.Column("arguments_sha256", sa.String(64), nullable=False),
        sa.Column("arguments_sealed", sa.Text, nullable=False),
        sa.Column("policy_version", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("executed_at", sa.Float, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
    )
    op.create_index("ix_tool_approvals_state", "tool_approvals", ["state", "created_at"])
    op.create_index("ix_tool_approvals_requester", "tool_approvals", ["requester"])


def downgrade() -> None:
    op.drop_index("ix_tool_approvals_requester", table_name="tool_approvals")
    op.drop_index("ix_tool_approvals_state", table_name="tool_approvals")
    op.drop_table("tool_approvals")
