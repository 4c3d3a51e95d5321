"""Initial grid model: areas in generations, units, 包保, categories, layers, cases, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:56:48.007237
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # GeoAlchemy2 creates the GiST index of each geometry column with its table (idx_<table>_<col>).
    op.create_table(
        "boundary_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_boundary_generation")),
    )
    op.create_table(
        "reference_version",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reference_version")),
    )
    op.create_table(
        "unit",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_unit")),
    )
    op.create_table(
        "area",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("generation_low", sa.Integer(), nullable=False),
        sa.Column("generation_high", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "level IN ('district','street','community','grid','compound')", name=op.f("ck_area_level")
        ),
        sa.CheckConstraint("generation_low <= generation_high", name=op.f("ck_area_generation_range")),
        sa.ForeignKeyConstraint(
            ["generation_high"],
            ["boundary_generation.id"],
            name=op.f("fk_area_generation_high_boundary_generation"),
        ),
        sa.ForeignKeyConstraint(
            ["generation_low"],
            ["boundary_generation.id"],
            name=op.f("fk_area_generation_low_boundary_generation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area")),
        sa.UniqueConstraint("code", "generation_low", name="code_generation"),
    )
    op.create_index("ix_area_generations", "area", ["generation_low", "generation_high"], unique=False)
    op.create_index("ix_area_level_code", "area", ["level", "code"], unique=False)
    op.create_table(
        "category",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("class_code", sa.String(length=2), nullable=False),
        sa.Column("subclass_code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("time_limit", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("time_limit_unit", sa.String(length=16), nullable=False),
        sa.Column("duplicate_radius_m", sa.Float(), nullable=True),
        sa.Column("duplicate_window_h", sa.Float(), nullable=True),
        sa.CheckConstraint("kind IN ('component','event')", name=op.f("ck_category_kind")),
        sa.CheckConstraint(
            "time_limit_unit IN ('urgent_hours','working_hours','working_days','natural_days')",
            name=op.f("ck_category_time_limit_unit"),
        ),
        sa.CheckConstraint("time_limit > 0", name=op.f("ck_category_time_limit_positive")),
        sa.ForeignKeyConstraint(
            ["department_code"], ["unit.code"], name=op.f("fk_category_department_code_unit")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_category")),
    )
    op.create_table(
        "grid_responsibility",
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["unit.code"],
            name=op.f("fk_grid_responsibility_unit_code_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("unit_code", "grid_code", name=op.f("pk_grid_responsibility")),
    )
    op.create_index(
        op.f("ix_grid_responsibility_grid_code"), "grid_responsibility", ["grid_code"], unique=False
    )
    op.create_table(
        "responsibility_layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("buffer_m", sa.Float(), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                srid=4326, dimension=2, from_text="ST_GeomFromEWKT", name="geometry", nullable=False
            ),
            nullable=False,
        ),
        sa.Column(
            "zone",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["unit.code"], name=op.f("fk_responsibility_layer_unit_code_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responsibility_layer")),
        sa.UniqueConstraint("code", name=op.f("uq_responsibility_layer_code")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("tracking_code", sa.String(length=32), nullable=False),
        sa.Column("category_code", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("reporter_contact", sa.Text(), nullable=True),
        sa.Column("reported_by", sa.String(length=64), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_crs", sa.String(length=16), nullable=False),
        sa.Column("reported_lon", sa.Float(), nullable=True),
        sa.Column("reported_lat", sa.Float(), nullable=True),
        sa.Column(
            "location",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("grid_area_id", sa.Integer(), nullable=True),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("community_code", sa.String(length=32), nullable=True),
        sa.Column("street_code", sa.String(length=32), nullable=True),
        sa.Column("district_code", sa.String(length=32), nullable=True),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("cooperating_unit_codes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("routing", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"], ["category.code"], name=op.f("fk_cases_category_code_category")
        ),
        sa.ForeignKeyConstraint(["grid_area_id"], ["area.id"], name=op.f("fk_cases_grid_area_id_area")),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_cases_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_cases_idempotency_key")),
        sa.UniqueConstraint("tracking_code", name=op.f("uq_cases_tracking_code")),
    )
    op.create_index(op.f("ix_cases_category_code"), "cases", ["category_code"], unique=False)
    op.create_index(op.f("ix_cases_community_code"), "cases", ["community_code"], unique=False)
    op.create_index(op.f("ix_cases_grid_code"), "cases", ["grid_code"], unique=False)
    op.create_index("ix_cases_reported_at", "cases", ["reported_at"], unique=False)
    op.create_index("ix_cases_state_unit", "cases", ["state", "unit_code"], unique=False)
    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_event_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    op.create_index(op.f("ix_case_event_action"), "case_event", ["action"], unique=False)
    op.create_index("ix_case_event_case_at", "case_event", ["case_id", "at"], unique=False)

    # The case event log is append-only: history is evidence, so nobody edits or deletes it.
    op.execute(
        """
        CREATE FUNCTION case_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'case_event is append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$;
        CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event
            FOR EACH ROW EXECUTE FUNCTION case_event_append_only();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_event_append_only ON case_event")
    op.execute("DROP FUNCTION IF EXISTS case_event_append_only()")
    op.drop_index("ix_case_event_case_at", table_name="case_event")
    op.drop_index(op.f("ix_case_event_action"), table_name="case_event")
    op.drop_table("case_event")
    op.drop_index("ix_cases_state_unit", table_name="cases")
    op.drop_index("ix_cases_reported_at", table_name="cases")
    op.drop_index(op.f("ix_cases_grid_code"), table_name="cases")
    op.drop_index(op.f("ix_cases_community_code"), table_name="cases")
    op.drop_index(op.f("ix_cases_category_code"), table_name="cases")
    op.drop_table("cases")
    op.drop_table("responsibility_layer")
    op.drop_index(op.f("ix_grid_responsibility_grid_code"), table_name="grid_responsibility")
    op.drop_table("grid_responsibility")
    op.drop_table("category")
    op.drop_index("ix_area_level_code", table_name="area")
    op.drop_index("ix_area_generations", table_name="area")
    op.drop_table("area")
    op.drop_table("unit")
    op.drop_table("reference_version")
    op.drop_table("boundary_generation")
