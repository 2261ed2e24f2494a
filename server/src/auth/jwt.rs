//! JSON Web Tokens (`server.jwt`): RS256/ES256 with a PEM public key or a JWKS file, or HS256
//! with a secret from the environment. Issuer, audience and expiry are checked; a claim holds
//! the scopes, and `bind` fixes consumption API parameters from claims.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::{Grant, KeyScope, Principal};
use crate::config::JwtConfig;

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("server.jwt.secret_env names {0}, which is not set")]
    MissingSecret(String),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not an RSA or EC public key in PEM form")]
    BadPem { path: String },
    #[error("{path} is not a JWKS file ({{\"keys\": [...]}}): {message}")]
    BadJwks { path: String, message: String },
}

/// Why a token is refused (the 401's message).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT: {0}")]
    NotJwt(String),
    #[error("the token has no `kid` to find its key in the JWKS")]
    NoKid,
    #[error("no key `{0}` in the JWKS")]
    UnknownKid(String),
    #[error("key `{kid}` of the JWKS: {message}")]
    BadJwk { kid: String, message: String },
    #[error("algorithm {0:?} is not accepted here")]
    Algorithm(Algorithm),
    #[error("{0}")]
    Invalid(String),
    #[error("the token has no `{0}` claim, which server.jwt.bind requires")]
    MissingClaim(String),
}

enum Keys {
    One(DecodingKey, Algorithm),
    Set(JwkSet),
}

pub struct JwtVerifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    scopes_claim: String,
    bind: BTreeMap<String, String>,
}

impl JwtVerifier {
    /// Reads the key material named by the config (paths relative to `root`).
    pub fn new(config: &JwtConfig, root: &std::path::Path) -> Result<JwtVerifier, JwtSetupError> {
        let read = |p: &std::path::Path| {
            let path = root.join(p);
            std::fs::read(&path).map_err(|source| JwtSetupError::Read { path: path.display().to_string(), source })
        };
        let keys = if let Some(var) = &config.secret_env {
            let secret = std::env::var(var).map_err(|_| JwtSetupError::MissingSecret(var.clone()))?;
            Keys::One(DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
        } else if let Some(p) = &config.public_key {
            let pem = read(p)?;
            match (DecodingKey::from_rsa_pem(&pem), DecodingKey::from_ec_pem(&pem)) {
                (Ok(k), _) => Keys::One(k, Algorithm::RS256),
                (_, Ok(k)) => Keys::One(k, Algorithm::ES256),
                _ => return Err(JwtSetupError::BadPem { path: p.display().to_string() }),
            }
        } else {
            let p = config.jwks.as_ref().expect("validated: one key source");
            let set = serde_json::from_slice::<JwkSet>(&read(p)?)
                .map_err(|e| JwtSetupError::BadJwks { path: p.display().to_string(), message: e.to_string() })?;
            Keys::Set(set)
        };
        Ok(JwtVerifier {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            scopes_claim: config.scopes_claim.clone(),
            bind: config.bind.clone(),
        })
    }

    /// The principal a token names, or why it is refused (for the 401's message).
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::NotJwt(e.to_string()))?;
        let (key, alg) = match &self.keys {
            Keys::One(k, alg) => (k.clone(), *alg),
            Keys::Set(set) => {
                let kid = header.kid.as_deref().ok_or(TokenError::NoKid)?;
                let jwk = set.find(kid).ok_or_else(|| TokenError::UnknownKid(kid.to_string()))?;
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| TokenError::BadJwk { kid: kid.to_string(), message: e.to_string() })?;
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(TokenError::Algorithm(header.alg));
                }
                (key, header.alg)
            }
        };
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::HS256) || alg != header.alg {
            return Err(TokenError::Algorithm(header.alg));
        }
        let mut validation = Validation::new(alg);
        validation.validate_aud = self.audience.is_some();
        if let Some(aud) = &self.audience {
            validation.set_audience(&[aud]);
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let data = decode::<Value>(token, &key, &validation).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let mut bound = BTreeMap::new();
        for (param, claim) in &self.bind {
            let value = match claims.get(claim) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(TokenError::MissingClaim(claim.clone())),
            };
            bound.insert(param.clone(), value);
        }
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("token").to_string();
        Ok(Principal {
            name: subject.clone(),
            grants: grants(claims.get(&self.scopes_claim)),
            rate: 0.0,
            bound,
            limiter: format!("jwt:{subject}"),
        })
    }
}

/// `"ingest query:Orders"` or `["admin"]` → grants. Unknown words grant nothing.
fn grants(claim: Option<&Value>) -> Vec<Grant> {
    let words: Vec<String> = match claim {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    words
        .iter()
        .filter_map(|w| {
            let (scope, target) = match w.split_once(':') {
                Some((s, t)) => (s, Some(t.to_string())),
                None => (w.as_str(), None),
            };
            let scope: KeyScope = scope.parse().ok()?;
            let targets: Vec<String> = target.into_iter().collect();
            Some(Grant { scope, models: targets.clone(), apis: targets })
        })
        .collect()
}
