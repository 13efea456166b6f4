"""Landscape: registry trials with their classification, and their countries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cellrail.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "landscape_trials",
        sa.Column("registry_id", sa.String(16), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("phases", sa.Text, nullable=False),
        sa.Column("overall_status", sa.Text),
        sa.Column("start_date", sa.Date),
        sa.Column("start_precision", sa.String(8)),
        sa.Column("start_kind", sa.String(12), nullable=False),
        sa.Column("lead_country", sa.String(2)),
        sa.Column("sponsor", sa.Text),
        sa.Column("sponsor_class", sa.Text),
        sa.Column("interventions", sa.Text, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("upstream_product_type", sa.Text),
        sa.Column("target", sa.Text),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("snapshot", sa.Date),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("platform", sa.Text),
        sa.Column("cell_source", sa.Text),
        sa.Column("rule", sa.Text, nullable=False),
    )
    op.create_index("ix_landscape_trials_start_date", "landscape_trials", ["start_date"])
    op.create_index("ix_landscape_trials_modality", "landscape_trials", ["modality"])
    op.create_table(
        "landscape_trial_countries",
        sa.Column("registry_id", sa.String(16), sa.ForeignKey("landscape_trials.registry_id"), primary_key=True),
        sa.Column("country", sa.String(2), primary_key=True),
    )
    op.create_index("ix_landscape_trial_countries_country", "landscape_trial_countries", ["country"])


def downgrade() -> None:
    op.drop_index("ix_landscape_trial_countries_country", table_name="landscape_trial_countries")
    op.drop_table("landscape_trial_countries")
    op.drop_index("ix_landscape_trials_modality", table_name="landscape_trials")
    op.drop_index("ix_landscape_trials_start_date", table_name="landscape_trials")
    op.drop_table("landscape_trials")
