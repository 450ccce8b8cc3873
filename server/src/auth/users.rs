//! Users, passwords, sessions and API tokens in SQLite, and the `sagedeck
//! user` commands that manage them.

use app::ApiError;
use app::auth::{Principal, Role};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

/// Store failures, logged; the caller is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("user store")(e)
}

/// How long a browser session lasts.
pub const SESSION_HOURS: u32 = 12;

/// Letters, digits, `.`, `_`, `-`, `@`; 1 to 64 characters.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "{name:?} is not a user name: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// At least 10 characters, at most 256 (argon2 takes any length; the cap
/// keeps a login request small).
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < 10 {
        Err(ApiError::Invalid(format!("the password has {n} characters; use at least 10")))
    } else if password.len() > 256 {
        Err(ApiError::Invalid("the password is over 256 bytes".into()))
    } else {
        Ok(())
    }
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| ApiError::Internal(format!("no randomness for the salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Argon2id with the crate's defaults (19 MiB, 2 passes): OWASP's minimum.
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing the password failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of no one's password, verified against when the name is unknown so
/// that a wrong name takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not anyone's password").unwrap_or_default())
}

/// 32 random bytes, URL-safe base64.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness for a token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

#[derive(Clone)]
pub struct Users {
    pool: SqlitePool,
}

/// A session found by its cookie.
pub struct Session {
    pub principal: Principal,
    pub token_hash: String,
    pub csrf: String,
}

impl Users {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub async fn any(&self) -> Result<bool, ApiError> {
        Ok(sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(&self.pool).await.map_err(db)?)
    }

    pub async fn add(&self, name: &str, password: &str, role: Role) -> Result<(), ApiError> {
        check_name(name)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        let result = sqlx::query(&format!(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, {NOW}, {NOW})"
        ))
        .bind(name)
        .bind(hash)
        .bind(role.as_str())
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(ApiError::Conflict(format!("there is already a user {name:?}; use `sagedeck user passwd` or `user role`")))
            }
            other => other.map(|_| ()).map_err(db),
        }
    }

    /// Removes the user; their sessions and tokens go with them (cascade).
    pub async fn remove(&self, name: &str) -> Result<(), ApiError> {
        let done = sqlx::query("DELETE FROM users WHERE name = ?").bind(name).execute(&self.pool).await.map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(ApiError::NotFound(format!("there is no user {name:?}")));
        }
        Ok(())
    }

    /// A new password signs the user out everywhere: sessions, API tokens and
    /// known devices end with the old password.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), ApiError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        let done = sqlx::query(&format!("UPDATE users SET password_hash = ?, updated_at = {NOW} WHERE name = ?"))
            .bind(hash)
            .bind(name)
            .execute(&mut *tx)
            .await.map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(ApiError::NotFound(format!("there is no user {name:?}")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_name = ?").bind(name).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("DELETE FROM api_tokens WHERE user_name = ?").bind(name).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("DELETE FROM known_devices WHERE user_name = ?").bind(name).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// A device cookie for a browser that just signed in as `name`.
    pub async fn add_device(&self, name: &str) -> Result<String, ApiError> {
        let token = new_token()?;
        sqlx::query(&format!("INSERT INTO known_devices (token_hash, user_name, created_at) VALUES (?, ?, {NOW})"))
            .bind(token_hash(&token))
            .bind(name)
            .execute(&self.pool)
            .await.map_err(db)?;
        Ok(token)
    }

    /// Whether a device cookie belongs to `name`.
    pub async fn is_device_of(&self, token: &str, name: &str) -> Result<bool, ApiError> {
        let found: Option<String> = sqlx::query_scalar("SELECT user_name FROM known_devices WHERE token_hash = ?")
            .bind(token_hash(token))
            .fetch_optional(&self.pool)
            .await.map_err(db)?;
        Ok(found.as_deref() == Some(name))
    }

    pub async fn set_role(&self, name: &str, role: Role) -> Result<Role, ApiError> {
        let before: Option<String> =
            sqlx::query_scalar("SELECT role FROM users WHERE name = ?").bind(name).fetch_optional(&self.pool).await.map_err(db)?;
        let before = before.ok_or_else(|| ApiError::NotFound(format!("there is no user {name:?}")))?;
        sqlx::query(&format!("UPDATE users SET role = ?, updated_at = {NOW} WHERE name = ?"))
            .bind(role.as_str())
            .bind(name)
            .execute(&self.pool)
            .await.map_err(db)?;
        Role::parse(&before).map_err(ApiError::Internal)
    }

    pub async fn list(&self) -> Result<Vec<(String, Role, String)>, ApiError> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT name, role, created_at FROM users ORDER BY name").fetch_all(&self.pool).await.map_err(db)?;
        rows.into_iter().map(|(n, r, c)| Ok((n, Role::parse(&r).map_err(ApiError::Internal)?, c))).collect()
    }

    /// The user's role when the password is theirs. Always runs one argon2
    /// verification, whether the name exists or not.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<Role>, ApiError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT password_hash, role FROM users WHERE name = ?").bind(name).fetch_optional(&self.pool).await.map_err(db)?;
        let password = password.to_string();
        let (hash, role) = row.clone().unwrap_or_else(|| (decoy_hash().to_string(), String::new()));
        // argon2 is deliberately slow: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| ApiError::Internal(format!("password check crashed: {e}")))?;
        Ok(if ok && row.is_some() { Some(Role::parse(&role).map_err(ApiError::Internal)?) } else { None })
    }

    /// Starts a session with the CSRF token its pages must echo (signed by
    /// the console, like every CSRF token it hands out); returns (cookie
    /// token, CSRF token).
    pub async fn start_session(&self, name: &str, csrf: String) -> Result<(String, String), ApiError> {
        let token = new_token()?;
        sqlx::query(&format!(
            "INSERT INTO sessions (token_hash, user_name, csrf_token, created_at, expires_at)
             VALUES (?, ?, ?, {NOW}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{SESSION_HOURS} hours'))"
        ))
        .bind(token_hash(&token))
        .bind(name)
        .bind(&csrf)
        .execute(&self.pool)
        .await.map_err(db)?;
        // Expired sessions are swept here rather than by a timer.
        sqlx::query(&format!("DELETE FROM sessions WHERE expires_at < {NOW}")).execute(&self.pool).await.map_err(db)?;
        Ok((token, csrf))
    }

    pub async fn session(&self, token: &str) -> Result<Option<Session>, ApiError> {
        let hash = token_hash(token);
        let row: Option<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT s.user_name, u.role, s.csrf_token FROM sessions s JOIN users u ON u.name = s.user_name
             WHERE s.token_hash = ? AND s.expires_at > {NOW}"
        ))
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await.map_err(db)?;
        row.map(|(name, role, csrf)| {
            Ok(Session {
                principal: Principal { name, role: Role::parse(&role).map_err(ApiError::Internal)?, open: false },
                token_hash: hash,
                csrf,
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    pub async fn add_token(&self, name: &str, label: &str) -> Result<String, ApiError> {
        let token = new_token()?;
        let result = sqlx::query(&format!("INSERT INTO api_tokens (token_hash, user_name, label, created_at) VALUES (?, ?, ?, {NOW})"))
            .bind(token_hash(&token))
            .bind(name)
            .bind(label)
            .execute(&self.pool)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(ApiError::NotFound(format!("there is no user {name:?}"))),
            other => other.map(|_| format!("sd_{token}")).map_err(db),
        }
    }

    pub async fn token(&self, bearer: &str) -> Result<Option<Principal>, ApiError> {
        let Some(token) = bearer.strip_prefix("sd_") else { return Ok(None) };
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT t.user_name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await.map_err(db)?;
        row.map(|(name, role)| Ok(Principal { name, role: Role::parse(&role).map_err(ApiError::Internal)?, open: false })).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn users() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("u.db").display())).await.unwrap();
        (dir, Users::new(pool))
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("ann.lee@corp").is_ok());
        for bad in ["", "a b", "x'--", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("short").unwrap_err().to_string().contains("at least 10"));
        assert!(check_password("long enough!").is_ok());
    }

    #[test]
    fn hashes_are_salted_argon2id() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "two hashes of one password must differ (salt)");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsf", &a));
    }

    #[tokio::test]
    async fn users_sessions_and_tokens_round_trip() {
        let (_dir, users) = users().await;
        assert!(!users.any().await.unwrap());
        users.add("ann", "ann's long password", Role::Operator).await.unwrap();
        assert!(matches!(users.add("ann", "another password", Role::Viewer).await, Err(ApiError::Conflict(_))));
        assert_eq!(users.verify("ann", "ann's long password").await.unwrap(), Some(Role::Operator));
        assert_eq!(users.verify("ann", "wrong password!").await.unwrap(), None);
        assert_eq!(users.verify("bob", "ann's long password").await.unwrap(), None);

        let (token, csrf) = users.start_session("ann", "csrf-token".into()).await.unwrap();
        let session = users.session(&token).await.unwrap().unwrap();
        assert_eq!(session.principal.name, "ann");
        assert_eq!(session.csrf, csrf);
        assert!(users.session("forged").await.unwrap().is_none());

        let api = users.add_token("ann", "ci").await.unwrap();
        assert_eq!(users.token(&api).await.unwrap().unwrap().role, Role::Operator);
        assert!(users.token("sd_forged").await.unwrap().is_none());

        // A new password ends the sessions; removing the user ends everything.
        users.set_password("ann", "a brand new password").await.unwrap();
        assert!(users.session(&token).await.unwrap().is_none());
        assert_eq!(users.set_role("ann", Role::Admin).await.unwrap(), Role::Operator);
        users.remove("ann").await.unwrap();
        assert!(users.token(&api).await.unwrap().is_none());
        assert!(matches!(users.remove("ann").await, Err(ApiError::NotFound(_))));
    }
}
