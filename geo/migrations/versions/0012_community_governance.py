"""Community governance (社区治理): the three parties, co-building units, registered members, the demand
and resource lists and small wishes, round tables and their agendas; the roles community_staff
(社区工作人员) and branch_secretary (小区党支部书记).

The tables are written out as `geo/community/models.py` declared them at this revision (the DDL
below, compiled from the models then and frozen); a later change to them is a migration of its own.

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


#: The tables as `geo/community/models.py` declared them at this revision, frozen here (a later
#: change to the models is a later migration, never a different shape for this one).
DDL = """
CREATE TABLE governance_post (
    account_id INTEGER NOT NULL,
    area_code VARCHAR(32) NOT NULL,
    CONSTRAINT pk_governance_post PRIMARY KEY (account_id, area_code),
    CONSTRAINT fk_governance_post_account_id_account FOREIGN KEY(account_id) REFERENCES account (id) ON DELETE CASCADE
);
CREATE TABLE compound_party (
    compound_code VARCHAR(32) NOT NULL,
    party VARCHAR(24) NOT NULL,
    name TEXT NOT NULL,
    head TEXT NOT NULL,
    unit_code VARCHAR(32),
    CONSTRAINT pk_compound_party PRIMARY KEY (compound_code, party),
    CONSTRAINT ck_compound_party_party CHECK (party IN ('branch','owners_committee','property')),
    CONSTRAINT fk_compound_party_unit_code_unit FOREIGN KEY(unit_code) REFERENCES unit (code)
);
CREATE TABLE co_building_unit (
    id SERIAL NOT NULL,
    name TEXT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    unit_code VARCHAR(32),
    CONSTRAINT pk_co_building_unit PRIMARY KEY (id),
    CONSTRAINT uq_co_building_unit_name UNIQUE (name),
    CONSTRAINT fk_co_building_unit_unit_code_unit FOREIGN KEY(unit_code) REFERENCES unit (code)
);
CREATE TABLE co_building_agreement (
    id SERIAL NOT NULL,
    co_unit_id INTEGER NOT NULL,
    community_code VARCHAR(32) NOT NULL,
    signed_on DATE NOT NULL,
    title TEXT NOT NULL,
    CONSTRAINT pk_co_building_agreement PRIMARY KEY (id),
    CONSTRAINT fk_co_building_agreement_co_unit_id_co_building_unit FOREIGN KEY(co_unit_id) REFERENCES co_building_unit (id)
);
CREATE INDEX ix_co_building_agreement_co_unit_id ON co_building_agreement (co_unit_id);
CREATE INDEX ix_co_building_agreement_community_code ON co_building_agreement (community_code);
CREATE TABLE party_member (
    id SERIAL NOT NULL,
    name TEXT NOT NULL,
    compound_code VARCHAR(32) NOT NULL,
    workplace TEXT NOT NULL,
    cadre BOOLEAN NOT NULL,
    registered_on DATE NOT NULL,
    account_id INTEGER,
    CONSTRAINT pk_party_member PRIMARY KEY (id),
    CONSTRAINT fk_party_member_account_id_account FOREIGN KEY(account_id) REFERENCES account (id)
);
CREATE INDEX ix_party_member_compound_code ON party_member (compound_code);
CREATE TABLE service_post (
    id SERIAL NOT NULL,
    member_id INTEGER NOT NULL,
    post VARCHAR(32) NOT NULL,
    claimed_on DATE NOT NULL,
    CONSTRAINT pk_service_post PRIMARY KEY (id),
    CONSTRAINT fk_service_post_member_id_party_member FOREIGN KEY(member_id) REFERENCES party_member (id)
);
CREATE INDEX ix_service_post_member_id ON service_post (member_id);
CREATE TABLE governance_item (
    id BIGSERIAL NOT NULL,
    list VARCHAR(16) NOT NULL,
    compound_code VARCHAR(32),
    community_code VARCHAR(32) NOT NULL,
    street_code VARCHAR(32) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    raised_by TEXT NOT NULL,
    raised_at TIMESTAMP WITH TIME ZONE NOT NULL,
    recorded_by VARCHAR(64),
    level VARCHAR(16) NOT NULL,
    offered_by_id INTEGER,
    state VARCHAR(16) NOT NULL,
    claimer_kind VARCHAR(16),
    claimer_unit_id INTEGER,
    claimer_member_id INTEGER,
    claimer_compound_code VARCHAR(32),
    resource_id BIGINT,
    claimed_at TIMESTAMP WITH TIME ZONE,
    due_on DATE,
    closed_at TIMESTAMP WITH TIME ZONE,
    close_note TEXT,
    close_photo_key VARCHAR(64),
    closed_by VARCHAR(64),
    case_id BIGINT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_governance_item PRIMARY KEY (id),
    CONSTRAINT ck_governance_item_list CHECK (list IN ('demand','resource','wish')),
    CONSTRAINT ck_governance_item_state CHECK (state IN ('open','claimed','closed')),
    CONSTRAINT ck_governance_item_claimer_kind CHECK (claimer_kind IS NULL OR claimer_kind IN ('unit','member','branch')),
    CONSTRAINT ck_governance_item_level CHECK (level IN ('compound','community')),
    CONSTRAINT fk_governance_item_offered_by_id_co_building_unit FOREIGN KEY(offered_by_id) REFERENCES co_building_unit (id),
    CONSTRAINT fk_governance_item_claimer_unit_id_co_building_unit FOREIGN KEY(claimer_unit_id) REFERENCES co_building_unit (id),
    CONSTRAINT fk_governance_item_claimer_member_id_party_member FOREIGN KEY(claimer_member_id) REFERENCES party_member (id),
    CONSTRAINT fk_governance_item_resource_id_governance_item FOREIGN KEY(resource_id) REFERENCES governance_item (id),
    CONSTRAINT fk_governance_item_case_id_cases FOREIGN KEY(case_id) REFERENCES cases (id)
);
CREATE INDEX ix_governance_item_compound ON governance_item (compound_code, state);
CREATE INDEX ix_governance_item_list_community ON governance_item (list, community_code, state);
CREATE TABLE governance_item_note (
    id BIGSERIAL NOT NULL,
    item_id BIGINT NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    by VARCHAR(64) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    text TEXT NOT NULL,
    photo_key VARCHAR(64),
    CONSTRAINT pk_governance_item_note PRIMARY KEY (id),
    CONSTRAINT fk_governance_item_note_item_id_governance_item FOREIGN KEY(item_id) REFERENCES governance_item (id)
);
CREATE INDEX ix_governance_item_note_item_id ON governance_item_note (item_id);
CREATE TABLE round_table (
    id SERIAL NOT NULL,
    level VARCHAR(16) NOT NULL,
    area_code VARCHAR(32) NOT NULL,
    community_code VARCHAR(32) NOT NULL,
    street_code VARCHAR(32) NOT NULL,
    held_on DATE NOT NULL,
    chair TEXT NOT NULL,
    attendees JSONB NOT NULL,
    minutes TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_by VARCHAR(64),
    CONSTRAINT pk_round_table PRIMARY KEY (id),
    CONSTRAINT ck_round_table_level CHECK (level IN ('compound','community'))
);
CREATE INDEX ix_round_table_area_held ON round_table (area_code, held_on);
CREATE TABLE agenda_item (
    id BIGSERIAL NOT NULL,
    meeting_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    source VARCHAR(24) NOT NULL,
    title TEXT NOT NULL,
    item_id BIGINT,
    case_ids BIGINT[] NOT NULL,
    category_code VARCHAR(16),
    carried_from_id BIGINT,
    outcome VARCHAR(16),
    outcome_note TEXT NOT NULL,
    due_on DATE,
    case_id BIGINT,
    decided_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_agenda_item PRIMARY KEY (id),
    CONSTRAINT ck_agenda_item_outcome CHECK (outcome IS NULL OR outcome IN ('claimed','escalated','case','closed')),
    CONSTRAINT fk_agenda_item_meeting_id_round_table FOREIGN KEY(meeting_id) REFERENCES round_table (id) ON DELETE CASCADE,
    CONSTRAINT fk_agenda_item_item_id_governance_item FOREIGN KEY(item_id) REFERENCES governance_item (id),
    CONSTRAINT fk_agenda_item_carried_from_id_agenda_item FOREIGN KEY(carried_from_id) REFERENCES agenda_item (id),
    CONSTRAINT fk_agenda_item_case_id_cases FOREIGN KEY(case_id) REFERENCES cases (id)
);
CREATE INDEX ix_agenda_item_item_id ON agenda_item (item_id);
CREATE INDEX ix_agenda_item_meeting ON agenda_item (meeting_id, position);
"""


def _role_check(roles: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE account DROP CONSTRAINT IF EXISTS ck_account_role")
    listed = ",".join(f"'{r}'" for r in roles)
    op.execute(f"ALTER TABLE account ADD CONSTRAINT ck_account_role CHECK (role IN ({listed}))")


def upgrade() -> None:
    op.execute(DDL)
    _role_check(ROLES_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM account WHERE role IN ('community_staff','branch_secretary')")
    _role_check(ROLES_BEFORE)
    for name in reversed(TABLES):
        op.drop_table(name)
