"""Community governance (社区治理): the three parties, co-building units, registered members, the demand
and resource lists and small wishes, round tables and their agendas; the roles community_staff
(社区工作人员) and branch_secretary (小区党支部书记).

The tables are created as `geo/community/models.py` declares them at this revision (one place for
their columns and constraints); a later change to them is a migration of its own.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 02:45:00
"""

from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLES_BEFORE = ("inspector", "resident", "operator", "dispatcher", "unit_handler", "admin", "planner")
ROLES_AFTER = (*ROLES_BEFORE, "community_staff", "branch_secretary")
TABLES = (
    "governance_post",
    "compound_party",
    "co_building_unit",
    "co_building_agreement",
    "party_member",
    "service_post",
    "governance_item",
    "governance_item_note",
    "round_table",
    "agenda_item",
)


def _role_check(roles: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE account DROP CONSTRAINT IF EXISTS ck_account_role")
    listed = ",".join(f"'{r}'" for r in roles)
    op.execute(f"ALTER TABLE account ADD CONSTRAINT ck_account_role CHECK (role IN ({listed}))")


def upgrade() -> None:
    from geo.community import models

    bind = op.get_bind()
    for name in TABLES:
        models.Base.metadata.tables[name].create(bind)
    _role_check(ROLES_AFTER)


def downgrade() -> None:
    from geo.community import models

    op.execute("DELETE FROM account WHERE role IN ('community_staff','branch_secretary')")
    _role_check(ROLES_BEFORE)
    bind = op.get_bind()
    for name in reversed(TABLES):
        models.Base.metadata.tables[name].drop(bind)
