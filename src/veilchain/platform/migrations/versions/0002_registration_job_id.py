"""registrations.job_id: the API job a registration runs for

Before this, the job's registration was found by matching its images' source paths with
LIKE on the job's /dev/shm directory. Existing rows are backfilled from that path once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SHM_PREFIX = "/dev/shm/veilchain-"


def upgrade() -> None:
    conn = op.get_bind()
    columns = {c["name"] for c in sa.inspect(conn).get_columns("registrations")}
    if "job_id" in columns:  # an older database whose missing tables were created whole
        return
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("job_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_registrations_job_id", ["job_id"])
    rows = conn.execute(
        sa.text(
            "SELECT uid, MIN(source) FROM registration_images WHERE source LIKE :p GROUP BY uid"
        ),
        {"p": _SHM_PREFIX + "%"},
    ).fetchall()
    for uid, source in rows:
        job_id = source[len(_SHM_PREFIX) :].split("/", 1)[0]
        conn.execute(
            sa.text("UPDATE registrations SET job_id = :j WHERE uid = :u"),
            {"j": job_id, "u": uid},
        )


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_index("ix_registrations_job_id")
        batch.drop_column("job_id")
