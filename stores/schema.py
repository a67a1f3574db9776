"""The session file's schema and its forward migrations.

``PRAGMA user_version`` holds the number of migrations applied. Migration ``i`` takes a file from version
``i`` to ``i + 1``; every migration runs inside the opening transaction, so a crash mid-migration leaves
the file at its old version. Never edit a released migration: append a new one.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the session's tables.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    -- The conversation is a tree: each message points to its parent, a branch is a head pointer, so
    -- branches share their prefix and a checkpoint never copies the conversation.
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY,
        parent_id    INTEGER REFERENCES messages(id),
        role         TEXT NOT NULL,
        content      TEXT NOT NULL,
        tool_calls   TEXT,
        tool_call_id TEXT,
        created_at   REAL NOT NULL
    );

    -- States are stored once per distinct value (content hash), so an unchanged state costs nothing.
    CREATE TABLE states (
        id   INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL
    );

    CREATE TABLE checkpoints (
        n               INTEGER PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        run_id          TEXT NOT NULL,
        step            INTEGER NOT NULL,
        parent_id       TEXT,
        head_message_id INTEGER REFERENCES messages(id),
        state_id        INTEGER REFERENCES states(id),
        status          TEXT NOT NULL,
        created_at      REAL NOT NULL
    );
    CREATE INDEX checkpoints_by_run ON checkpoints(run_id, n);

    CREATE TABLE chunks (
        seq    INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        type   TEXT NOT NULL,
        ts     REAL NOT NULL,
        body   TEXT NOT NULL
    );

    CREATE TABLE runs (
        n                     INTEGER PRIMARY KEY,
        id                    TEXT NOT NULL UNIQUE,
        agent_type            TEXT NOT NULL,
        status                TEXT NOT NULL,
        created_at            REAL NOT NULL,
        updated_at            REAL NOT NULL,
        mode                  TEXT NOT NULL,
        from_checkpoint_id    TEXT,
        output                TEXT,
        error                 TEXT,
        reason                TEXT,
        resumable             INTEGER NOT NULL DEFAULT 1,
        resume_blocked_reason TEXT,
        metadata              TEXT
    );

    CREATE TABLE usage_entries (
        id                INTEGER PRIMARY KEY,
        run_id            TEXT,
        kind              TEXT NOT NULL,
        model             TEXT,
        name              TEXT,
        input_tokens      INTEGER NOT NULL,
        output_tokens     INTEGER NOT NULL,
        cached_tokens     INTEGER NOT NULL,
        reasoning_tokens  INTEGER NOT NULL,
        duration_ms       REAL NOT NULL,
        created_at        REAL NOT NULL
    );
    """,
    # 1 -> 2: usage rollup kept current with each entry, backfilled from the entries already there.
    """
    CREATE TABLE usage_rollup (
        kind             TEXT NOT NULL,
        model            TEXT NOT NULL,
        calls            INTEGER NOT NULL,
        input_tokens     INTEGER NOT NULL,
        output_tokens    INTEGER NOT NULL,
        cached_tokens    INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        duration_ms      REAL NOT NULL,
        PRIMARY KEY (kind, model)
    ) WITHOUT ROWID;
    INSERT INTO usage_rollup
        SELECT kind, coalesce(model, ''), count(*), sum(input_tokens), sum(output_tokens),
               sum(cached_tokens), sum(reasoning_tokens), sum(duration_ms)
        FROM usage_entries GROUP BY kind, coalesce(model, '');
    """,
    # 2 -> 3: where a run started (conversation head and state), which ``retry from_start`` restores.
    """
    ALTER TABLE runs ADD COLUMN start_head_id INTEGER;
    ALTER TABLE runs ADD COLUMN start_state_id INTEGER;
    """,
    # 3 -> 4: the seq of a run's first chunk, where a listener of that run starts reading.
    """
    ALTER TABLE runs ADD COLUMN first_seq INTEGER;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
