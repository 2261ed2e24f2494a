//! API keys: `igloo_<id>_<secret>`. The id (16 hex digits) finds the key; the secret (64 hex
//! digits, 256 random bits) proves it. Only an argon2id hash of the secret, with a salt of its
//! own, is stored (`_igloo_keys`); verification compares in constant time (argon2's verifier).
//!
//! The server's [`KeyStore`] re-reads the table every [`REFRESH`], so a key revoked on one
//! replica is refused by all within that time. A key verified once is remembered by the
//! SHA-256 of the whole token (never the token), so argon2 runs once per key and process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clickhouse::ClickHouse;

/// How often the server re-reads the keys: a revocation takes effect within this (plus one
/// query) everywhere.
pub const REFRESH: Duration = Duration::from_secs(2);

const PREFIX: &str = "igloo_";

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    Ingest,
    Query,
    Admin,
}

crate::config::word_enum!(KeyScope, "a scope", { Ingest => "ingest", Query => "query", Admin => "admin" });

/// A key as stored (a row of `_igloo_keys`), without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub scope: KeyScope,
    /// Models it may ingest into or read (all when empty).
    pub models: Vec<String>,
    /// Consumption APIs it may call (all when both lists are empty).
    pub apis: Vec<String>,
    /// Requests per second (0: unlimited).
    pub rate: f64,
    /// Seconds since the epoch after which it is refused (0: never).
    pub expires_at: u64,
    /// The argon2id PHC string of the secret.
    pub hash: String,
    pub revoked: bool,
    pub created: u64,
}

/// A row of `keys_sql::current`.
#[derive(Deserialize)]
struct Row {
    key_id: String,
    key_name: String,
    key_scope: String,
    key_models: Vec<String>,
    key_apis: Vec<String>,
    key_rate: f64,
    #[serde(deserialize_with = "crate::clickhouse::u64_json")]
    key_expires_at: u64,
    key_hash: String,
    key_revoked: u8,
    #[serde(deserialize_with = "crate::clickhouse::u64_json")]
    key_created: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot hash the key: {0}")]
    Hash(String),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error(transparent)]
    ClickHouse(#[from] crate::clickhouse::ClickHouseError),
    #[error("the keys table holds a row igloo cannot read: {0}")]
    BadRow(String),
}

/// A new key: the token to hand out (shown once) and the record to store.
pub struct NewKey {
    pub token: String,
    pub id: String,
    pub hash: String,
}

fn random_hex(bytes: usize) -> Result<String, KeyError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// Makes a key: random id and secret, the secret hashed with argon2id and a fresh salt.
pub fn generate() -> Result<NewKey, KeyError> {
    let id = random_hex(8)?;
    let secret = random_hex(32)?;
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| KeyError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| KeyError::Hash(e.to_string()))?;
    let hash = Argon2::default().hash_password(secret.as_bytes(), &salt).map_err(|e| KeyError::Hash(e.to_string()))?;
    Ok(NewKey { token: format!("{PREFIX}{id}_{secret}"), id, hash: hash.to_string() })
}

/// `(id, secret)` of a token that looks like an igloo key.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some((id, secret))
}

/// Whether `secret` is the one `hash` was made from (constant-time comparison).
pub fn verify(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// Every key in the table as it stands now.
pub async fn load(ch: &ClickHouse, database: &str) -> Result<Vec<KeyRecord>, KeyError> {
    let rows: Vec<Row> = ch.rows(&igloo_schemas::sql::internal::keys_sql::current(database)).await?;
    rows.into_iter()
        .map(|r| {
            Ok(KeyRecord {
                scope: r.key_scope.parse().map_err(KeyError::BadRow)?,
                id: r.key_id,
                name: r.key_name,
                models: r.key_models,
                apis: r.key_apis,
                rate: r.key_rate,
                expires_at: r.key_expires_at,
                hash: r.key_hash,
                revoked: r.key_revoked != 0,
                created: r.key_created,
            })
        })
        .collect()
}

/// Why a presented key is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Revoked,
    Expired,
    /// The keys could not be read yet (ClickHouse unreachable since start).
    Unavailable,
}

/// The keys as the server knows them, refreshed by [`KeyStore::refresh_loop`].
#[derive(Default)]
pub struct KeyStore {
    keys: RwLock<Option<HashMap<String, KeyRecord>>>,
    /// SHA-256 of a verified token → its key id.
    verified: RwLock<HashMap<[u8; 32], String>>,
}

impl KeyStore {
    pub fn replace(&self, keys: Vec<KeyRecord>) {
        let map: HashMap<String, KeyRecord> = keys.into_iter().map(|k| (k.id.clone(), k)).collect();
        // Forget verifications of keys that are gone or revoked.
        self.verified.write().expect("verified lock").retain(|_, id| map.get(id).is_some_and(|k| !k.revoked));
        *self.keys.write().expect("keys lock") = Some(map);
    }

    /// Whether this token was verified before (so checking it again costs no argon2).
    pub fn remembered(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.verified.read().expect("verified lock").contains_key(&digest)
    }

    /// The key a token proves, if it is current.
    pub fn check(&self, token: &str, now_unix: u64) -> Result<KeyRecord, Refused> {
        let Some((id, secret)) = split(token) else { return Err(Refused::Unknown) };
        let record = {
            let keys = self.keys.read().expect("keys lock");
            let keys = keys.as_ref().ok_or(Refused::Unavailable)?;
            keys.get(id).cloned().ok_or(Refused::Unknown)?
        };
        if record.revoked {
            return Err(Refused::Revoked);
        }
        if record.expires_at != 0 && record.expires_at <= now_unix {
            return Err(Refused::Expired);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.verified.read().expect("verified lock").get(&digest).is_some_and(|v| v == id) {
            return Ok(record);
        }
        if !verify(secret, &record.hash) {
            return Err(Refused::Unknown);
        }
        self.verified.write().expect("verified lock").insert(digest, id.to_string());
        Ok(record)
    }

    /// Creates the keys table if missing, then re-reads the keys every [`REFRESH`] until `stop`.
    pub async fn refresh_loop(self: Arc<Self>, target: KeysTable, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut created = false;
        loop {
            if !created {
                created = target.create().await.is_ok();
            }
            match load(&target.clickhouse, &target.database).await {
                Ok(keys) => self.replace(keys),
                Err(e) => tracing::warn!(error = %e, "cannot read the API keys; keeping the last ones read"),
            }
            tokio::select! {
                _ = tokio::time::sleep(REFRESH) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Where the keys live: the project's database, on one server or a cluster.
#[derive(Clone)]
pub struct KeysTable {
    pub clickhouse: ClickHouse,
    pub database: String,
    pub dialect: igloo_schemas::Dialect,
    pub cluster: Option<igloo_schemas::sql::Cluster>,
}

impl KeysTable {
    /// `CREATE TABLE IF NOT EXISTS _igloo_keys` (on every node of a cluster).
    pub async fn create(&self) -> Result<(), KeyError> {
        let create =
            igloo_schemas::sql::Statement::CreateTable(Box::new(igloo_schemas::internal::keys_table(&self.database)));
        Ok(self.clickhouse.execute_all(create.render_for(self.dialect, self.cluster.as_ref())).await?)
    }

    /// Appends rows (`KEY_COLUMNS`, as JSON objects) to the log.
    pub async fn append(&self, rows: &[serde_json::Value]) -> Result<(), KeyError> {
        let insert = igloo_schemas::sql::InsertJsonRows {
            database: self.database.clone(),
            table: igloo_schemas::internal::KEYS_TABLE.into(),
            columns: igloo_schemas::internal::KEY_COLUMNS.iter().map(|c| c.to_string()).collect(),
        };
        let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
        Ok(self.clickhouse.insert(&insert.render(), body).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_against_its_hash_only() {
        let k = generate().unwrap();
        let (id, secret) = split(&k.token).unwrap();
        assert_eq!(id, k.id);
        assert!(k.hash.starts_with("$argon2id$"), "{}", k.hash);
        assert!(!k.hash.contains(secret));
        assert!(verify(secret, &k.hash));
        let mut wrong = secret.to_string();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert!(!verify(&wrong, &k.hash));
        assert_eq!(split("igloo_abc_def"), None);
        assert_eq!(split("Bearer x"), None);
    }

    #[test]
    fn the_store_refuses_unknown_revoked_and_expired_keys() {
        let k = generate().unwrap();
        let record = |revoked, expires_at| KeyRecord {
            id: k.id.clone(),
            name: "n".into(),
            scope: KeyScope::Ingest,
            models: vec![],
            apis: vec![],
            rate: 0.0,
            expires_at,
            hash: k.hash.clone(),
            revoked,
            created: 0,
        };
        let store = KeyStore::default();
        assert_eq!(store.check(&k.token, 100).unwrap_err(), Refused::Unavailable);
        store.replace(vec![record(false, 0)]);
        assert_eq!(store.check(&k.token, 100).unwrap().id, k.id);
        assert_eq!(store.check(&k.token, 100).unwrap().id, k.id, "remembered");
        let forged = format!("{}0", &k.token[..k.token.len() - 1]);
        let forged = if forged == k.token { format!("{}1", &k.token[..k.token.len() - 1]) } else { forged };
        assert_eq!(store.check(&forged, 100).unwrap_err(), Refused::Unknown);
        store.replace(vec![record(false, 50)]);
        assert_eq!(store.check(&k.token, 100).unwrap_err(), Refused::Expired);
        store.replace(vec![record(true, 0)]);
        assert_eq!(store.check(&k.token, 100).unwrap_err(), Refused::Revoked);
        assert!(store.verified.read().unwrap().is_empty(), "a revoked key is forgotten");
    }
}
