-- A key only this console knows. The open console's CSRF tokens are signed
-- with it, so a page that did not come from the console cannot make one up
-- (a cookie planted by a neighbouring site, or a token guessed, is refused),
-- and it survives restarts so open tabs keep working.
CREATE TABLE console_secrets (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

-- Browsers that have signed in as a user before. Failed sign-ins lock a
-- user name for 15 minutes, which anyone could do to the admin from another
-- address; a browser holding a device cookie of that user is not locked out
-- by other addresses' failures (only by its own). Hashed like sessions.
CREATE TABLE known_devices (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
);
