//! `server.auth`, `server.jwt`, `server.cors` and `server.tls` of `igloo.yaml`: who may call
//! the server, and how it is reached.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Whether requests must carry a credential. Unset, it is `off` under `igloo dev` and
/// `required` under `igloo serve` (and so on every deploy target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Off,
    Required,
}

super::word_enum!(AuthMode, "an auth mode", { Off => "off", Required => "required" });

/// JSON Web Tokens, verified with one of: an HS256 secret from the environment, a PEM public
/// key (RS256 or ES256), or a JWKS file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The name of the environment variable holding the HS256 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A PEM public key file (RS256 or ES256, by the key's type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`); the token's `kid` picks the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<PathBuf>,
    /// Required `iss`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The claim holding scopes: a space-separated string or a list of `ingest`, `query`,
    /// `admin`, `ingest:<Model>`, `query:<Model or API>`.
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Consumption API parameters fixed by a claim: `tenant_id: tenant` makes every API's
    /// `tenant_id` the token's `tenant` claim, whatever the request says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bind: BTreeMap<String, String>,
}

fn default_scopes_claim() -> String {
    "scope".into()
}

/// Browser origins allowed to call the server (CORS), e.g. `https://app.example.com`; `*`
/// allows any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    #[serde(default)]
    pub origins: Vec<String>,
}

/// HTTPS: a PEM certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl JwtConfig {
    /// Exactly one key source must be given.
    pub(super) fn validate(&self) -> Result<(), String> {
        let sources =
            [self.secret_env.is_some(), self.public_key.is_some(), self.jwks.is_some()].iter().filter(|s| **s).count();
        match sources {
            1 => Ok(()),
            0 => Err("`server.jwt` needs one of `secret_env`, `public_key` or `jwks`".into()),
            _ => Err("`server.jwt` takes only one of `secret_env`, `public_key` and `jwks`".into()),
        }
    }
}
