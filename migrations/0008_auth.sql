-- Sign-in. Users are managed from the command line (`sagedeck user ...`);
-- while this table is empty the console runs open, and only on loopback.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,           -- argon2id, PHC string (salt and parameters inside)
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Browser sessions. Only the SHA-256 of the cookie's token is kept, so a copy
-- of the database does not let anyone sign in; the CSRF token is the one the
-- session's pages must echo in a header on every state-changing request.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_name);

-- API tokens for programs (curl, scripts) once sign-in is on: sent as
-- `Authorization: Bearer ...`, which browsers never attach by themselves, so
-- they need no CSRF token. Hashed like sessions; they act with the user's role.
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The journal's page filters by who and what on the server.
CREATE INDEX change_journal_actor ON change_journal (actor);
