"""registrations.description, licence, consent: what the institution states at registration

They are published in the manifest's dataset section (docs/manifest.md); a registration
keeps them so that a resumed one pins the same manifest. Existing rows have none (null).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("description", "licence", "consent")


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("registrations")}
    with op.batch_alter_table("registrations") as batch:
        for name in _COLUMNS:
            if name not in columns:  # an older database whose missing tables were created whole
                batch.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
