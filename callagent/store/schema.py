"""The call store's tables, and what keeps an older database in step with them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from callagent.calls import CallRecord

__all__ = [
    "METADATA",
    "add_missing_columns",
    "allowed_numbers",
    "aware",
    "calls",
    "confirmations",
    "do_not_call",
    "refusals",
    "tenant_do_not_call",
]

MAX_REFUSAL_NUMBER = 32


def aware(value: datetime) -> datetime:
    """A naive datetime is UTC already (what SQLite hands back); an aware one is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = aware(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else aware(value)


def _ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, UtcDateTime(timezone=True), nullable=nullable)


METADATA = sa.MetaData()

calls = sa.Table(
    "callagent_calls",
    METADATA,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("phone_number", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("goal", sa.Text, nullable=False),
    sa.Column("context", sa.Text),
    sa.Column("greeting", sa.Text),
    sa.Column("dtmf", sa.String(64)),
    sa.Column("result_schema", sa.JSON(none_as_null=True)),
    sa.Column("caller_name", sa.Text, nullable=False),
    sa.Column("transfer_to", sa.String(16)),
    sa.Column("transfer_when", sa.Text),
    sa.Column("transfer_mode", sa.String(8)),
    sa.Column("transfers", sa.JSON(none_as_null=True)),  # null in a store older than transfers: none
    sa.Column("record", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("recording", sa.JSON(none_as_null=True)),
    sa.Column("events", sa.JSON(none_as_null=True)),  # null in a store older than events: none
    sa.Column("reasoning", sa.Text),
    _ts("approval_expires_at"),
    _ts("approved_at"),
    sa.Column("approved_by", sa.String(200)),
    sa.Column("denied_by", sa.String(200)),
    sa.Column("denial_note", sa.Text),
    sa.Column("max_hold_s", sa.Integer),
    # Null in a store older than profiles: the default profile, the operator, English.
    sa.Column("profile", sa.String(32)),
    sa.Column("tenant", sa.String(32)),
    sa.Column("language", sa.String(8)),
    sa.Column("caller_id", sa.String(16)),
    sa.Column("room_name", sa.String(128), nullable=False),
    sa.Column("idempotency_key", sa.String(255), unique=True),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("dialed_at"),
    _ts("answered_at"),
    _ts("ended_at"),
    sa.Column("ended_reason", sa.Text),
    sa.Column("end_reason", sa.String(32)),
    sa.Column("sip_status_code", sa.Integer),
    sa.Column("transcript", sa.JSON, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("outcome", sa.JSON(none_as_null=True)),
    _ts("heartbeat_at"),
    sa.Column("max_duration_s", sa.Integer, nullable=False),
    sa.Column("ring_timeout_s", sa.Integer, nullable=False),
    _ts("hangup_requested_at"),
    sa.Column("hangup_reason", sa.Text),
    sa.Column("hangup_status", sa.String(24)),
    sa.Column("hangup_end_reason", sa.String(32)),
    # Newest-first pages, the dial policy's per-number counts, and the reaper's scan.
    sa.Index("ix_callagent_calls_created", "created_at", "call_id"),
    sa.Index("ix_callagent_calls_number_created", "phone_number", "created_at"),
    sa.Index("ix_callagent_calls_status", "status"),
    sa.Index("ix_callagent_calls_end_reason", "end_reason"),
    sa.Index("ix_callagent_calls_tenant_created", "tenant", "created_at"),
)
_missing = set(CallRecord.model_fields) - set(calls.c.keys())
if _missing:  # a field added to CallRecord needs its column here
    raise RuntimeError(f"CallRecord fields without a column: {sorted(_missing)}")

# Numbers never to be called again; the operator owns this list (`callagent dnc`).
do_not_call = sa.Table(
    "callagent_do_not_call",
    METADATA,
    sa.Column("number", sa.String(16), primary_key=True),
    sa.Column("reason", sa.Text),
    sa.Column("call_id", sa.String(64)),  # the call in which the callee asked, if any
    _ts("added_at", nullable=False),
)

# A tenant's own do-not-call list (callagent.toml [tenants]): numbers its callees asked it not
# to call again. The global list above still holds for every tenant.
tenant_do_not_call = sa.Table(
    "callagent_tenant_do_not_call",
    METADATA,
    sa.Column("tenant", sa.String(32), primary_key=True),
    sa.Column("number", sa.String(16), primary_key=True),
    sa.Column("reason", sa.Text),
    sa.Column("call_id", sa.String(64)),
    _ts("added_at", nullable=False),
)

# Every refused call, for audit (`callagent refusals`); a looping client's repeats share a row.
refusals = sa.Table(
    "callagent_refusals",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _ts("at", nullable=False),
    sa.Column("number", sa.String(MAX_REFUSAL_NUMBER)),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("setting", sa.String(200)),
    sa.Column("repeats", sa.Integer, nullable=False, server_default="1"),
    _ts("last_at"),
    sa.Column("tenant", sa.String(32)),  # whose client asked; null: the operator's
    sa.Index("ix_callagent_refusals_at", "at", "id"),
)

# Numbers the operator allowed for good ("Allow always" in the console's approvals), on top of
# DIAL_ALLOW; who allowed each, when, and for which call: the audit of the list.
allowed_numbers = sa.Table(
    "callagent_allowed_numbers",
    METADATA,
    sa.Column("number", sa.String(16), primary_key=True),
    sa.Column("added_by", sa.String(200), nullable=False),
    sa.Column("call_id", sa.String(64)),
    _ts("added_at", nullable=False),
)

# One-time confirmation tokens. Only a hash of the token is stored: whoever can read the
# database still cannot confirm a call with it.
confirmations = sa.Table(
    "callagent_confirmations",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("args_hash", sa.String(64), nullable=False),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
)


def add_missing_columns(conn: sa.Connection) -> None:
    """Columns added since a database was created: ALTER TABLE ... ADD COLUMN, each nullable
    or with a default, so older stores keep working after an upgrade. A text column that has
    grown (a longer status) is widened where the database enforces lengths."""
    inspector = sa.inspect(conn)
    for table in METADATA.sorted_tables:
        existing = {c["name"]: c for c in inspector.get_columns(table.name)}
        present = set(existing)
        for column in table.columns:
            if column.name in present:
                old = getattr(existing[column.name]["type"], "length", None)
                new = getattr(column.type, "length", None)
                if conn.dialect.name == "postgresql" and old and new and new > old:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ALTER COLUMN "{column.name}" TYPE VARCHAR({new})'))
                continue
            ddl = f"{column.type.compile(dialect=conn.dialect)}"
            if column.server_default is not None:
                ddl += f" NOT NULL DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]  # a DefaultClause
            conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}'))
        # create_all makes an existing table's new indexes no more than its new columns.
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn, checkfirst=True)
