"""Alembic migrations of the ledger on SQLite and PostgreSQL: the first release's ledger upgraded, head equal to the models."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.ledger import migrations, schema
from bot.ledger.db import alembic_config, current_revision, open_engine
from bot.ledger.publications import Ledger
from bot.ledger.reshares import ReshareLedger
from tests.ledger import released_schema as released
from tests.ledger.race import slot_key

LEASE = timedelta(minutes=5)
THEN = datetime(2022, 1, 12, 7, 0)  # naive: the first release stored UTC times naive, as the UTC type does


def differences(url: str, metadata: sa.MetaData) -> list[object]:
    """What alembic's autogenerate would change to make the database at ``url`` match ``metadata``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def _named(difference: object) -> tuple[str, str]:
    """An autogenerate difference as (operation, name): a table or index by its name, a column as table.column."""
    op, *rest = difference  # type: ignore[misc]
    if op.endswith("_column"):
        return op, f"{rest[1]}.{rest[2].name}"
    return op, rest[0].name


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def make_released_ledger(url: str) -> None:
    """A ledger as the first release left it: its tables from ``create_all``, rows in each, no alembic."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        released.metadata.create_all(conn)
        pub_id = conn.execute(
            sa.insert(released.publications).values(
                campaign="free",
                slot_at=slot_key(1).slot_at.replace(tzinfo=None),
                target="post:launch",
                account="x-index",
                post="launch",
                manual=False,
                state="published",
                attempts=1,
                remote_id="42",
                url="https://x.com/a/status/42",
                created=THEN,
                updated=THEN,
            )
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(released.attempts).values(
                publication_id=pub_id, n=1, owner="w1", started=THEN, outcome="published"
            )
        )
        conn.execute(
            sa.insert(released.decisions).values(
                campaign="free",
                network="x",
                platform="x",
                remote_id="r1",
                scope="*",
                account="x-index",
                author_id="a1",
                author="@a",
                url="https://x.com/a/status/1",
                text="#FreeAndreiandIrina",
                decision="allow",
                status="done",
                reason="allowed",
                detail="",
                decided_at=THEN.replace(tzinfo=UTC),
                attempts=0,
                mention="{}",
            )
        )
        conn.execute(
            sa.insert(released.cursors).values(
                campaign="free",
                network="x",
                account="x-index",
                tags="#a",
                cursor="c-7",
                updated_at=THEN.replace(tzinfo=UTC),
            )
        )
    engine.dispose()


def test_the_first_releases_ledger_is_stamped_and_upgraded_with_its_rows_kept(db_url, clock):
    """A ledger made before alembic is recognised, stamped 0001, upgraded to head, and its rows read and work on."""
    make_released_ledger(db_url)
    assert "alembic_version" not in tables(db_url)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == migrations.HEAD
        assert "schema_version" not in tables(db_url)
        ledger = Ledger(engine, clock)
        row = ledger.get(slot_key(1))
        assert (row.state, row.remote_id, row.created) == ("published", "42", THEN.replace(tzinfo=UTC))
        assert [(a.n, a.owner, a.outcome) for a in ledger.attempts_of(row.id)] == [(1, "w1", "published")]
        assert ledger.claim(slot_key(1), "w2", LEASE, post="launch") is None  # published stays published
        claimed = ledger.claim_and_begin(slot_key(2), "w2", LEASE, post="launch", schedule="s", slot=0, platform="x")
        assert claimed is not None and claimed[0].id > row.id
        reshares = ReshareLedger(engine, "free")
        assert [(r.remote_id, r.status) for r in reshares.rows()] == [("r1", "done")]
        assert reshares.cursor("x", "x-index", "#a") == "c-7"
    finally:
        engine.dispose()
    assert differences(db_url, schema.metadata) == []


def test_revision_0001_builds_exactly_the_first_released_schema(db_url):
    """Upgraded to 0001 only, an empty database has the tables, columns, types and indexes the release made."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), migrations.FIRST_RELEASE)
    finally:
        engine.dispose()
    assert differences(db_url, released.metadata) == []


def test_an_empty_database_at_head_matches_the_models(db_url):
    """open_engine migrates an empty database to head, and autogenerate then finds nothing to change."""
    open_engine(db_url).dispose()
    assert differences(db_url, schema.metadata) == []
    # The comparison sees what differs: the release's schema_version, which revision 0002 dropped, and
    # what later revisions added (withdrawals 0003, staff reviews 0004, workers 0005, needs_attention and
    # notes 0006, rate_budgets 0007), seen as removals from the release.
    assert sorted(_named(d) for d in differences(db_url, released.metadata)) == [
        ("add_table", "schema_version"),
        ("remove_column", "publications.notes"),
        ("remove_column", "publications.resolved_at"),
        ("remove_column", "publications.resolved_by"),
        ("remove_column", "reshare_decisions.withdrawn_at"),
        ("remove_column", "reshare_decisions.withdrawn_detail"),
        ("remove_column", "reshare_decisions.withdrawn_reason"),
        ("remove_index", "ix_reshare_reviews_decision_id"),
        ("remove_table", "rate_budgets"),
        ("remove_table", "reshare_reviews"),
        ("remove_table", "workers"),
    ]
    assert tables(db_url) == {*schema.metadata.tables, "alembic_version"}


def test_head_is_the_newest_revision_alembic_knows():
    """``migrations.HEAD``, which spares a ledger at head from importing alembic, is alembic's own head."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [migrations.HEAD]
    assert script.get_revision(migrations.FIRST_RELEASE).down_revision is None


def test_workers_opening_one_empty_ledger_together_migrate_it_once(db_url):
    """Four engines opening the same empty database at once all succeed: one migrates, the others find it done."""
    go = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        go.wait()
        try:
            open_engine(db_url).dispose()
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [migrations.HEAD]
    finally:
        engine.dispose()


def test_opening_a_ledger_at_head_does_not_import_alembic(tmp_path):
    """A process opening a ledger already migrated never loads alembic (about 12 MB of a worker's RSS)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_engine(url).dispose()
    code = f"import sys; from bot.ledger.db import open_engine; open_engine({url!r}); print('alembic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("revision", [migrations.FIRST_RELEASE, "base"])
def test_downgrades_leave_the_schema_of_their_revision(db_url, revision):
    """Downgrading from head to 0001 restores the released schema; to base, it leaves no ledger table."""
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
    if revision == "base":
        assert tables(db_url) <= {"alembic_version"}
    else:
        assert differences(db_url, released.metadata) == []


def test_a_worker_migrates_a_new_ledger_in_a_child_and_never_imports_alembic(tmp_path):
    """With ``migrate_in_child`` an empty database reaches head through a child process; the opener stays lean."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = (
        "import sys; from bot.ledger.db import open_engine, current_revision; "
        f"e = open_engine({url!r}, migrate_in_child=True); c = e.connect(); "
        "print(current_revision(c), 'alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == [migrations.HEAD, "False"]
