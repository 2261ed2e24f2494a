//! Who may do what. With `server.auth: required` every request but `/health` and `/ready`
//! carries `Authorization: Bearer <API key or JWT>`; [`guard`] (called by `http::edge` on every
//! request) maps the route to what it needs ([`Need`]), checks the credential's grants, and
//! applies the key's rate and a per-IP rate for requests without a valid credential. Answers:
//! 401 with `WWW-Authenticate`, 403, 429 with `Retry-After`. [`cors_origin`] and [`preflight`]
//! answer browsers for `server.cors.origins`.

pub mod jwt;
pub mod keys;
mod limit;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

pub use keys::{KeyRecord, KeyScope, KeyStore};

use crate::api_error::ApiError;
use crate::app_state::{AppState, Route};
use crate::config::{AuthMode, JwtConfig};

/// What the server is told about auth.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub jwt: Option<JwtConfig>,
    pub cors_origins: Vec<String>,
    pub unauthenticated_rate: f64,
}

/// One thing a credential allows: a scope, optionally narrowed to models and APIs.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub scope: KeyScope,
    /// Models (empty with `apis` empty: all).
    pub models: Vec<String>,
    /// Consumption APIs.
    pub apis: Vec<String>,
}

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub grants: Vec<Grant>,
    /// Requests per second (0: unlimited).
    pub rate: f64,
    /// Consumption API parameters fixed by the credential (JWT `bind`).
    pub bound: BTreeMap<String, String>,
    /// The rate limiter's bucket.
    pub limiter: String,
}

impl Principal {
    fn from_key(k: &KeyRecord) -> Principal {
        Principal {
            name: k.name.clone(),
            grants: vec![Grant { scope: k.scope, models: k.models.clone(), apis: k.apis.clone() }],
            rate: k.rate,
            bound: BTreeMap::new(),
            limiter: format!("key:{}", k.id),
        }
    }

    /// Whether the grants cover `need` (bindings aside).
    pub fn allows(&self, need: &Need) -> bool {
        let open = |g: &Grant| g.models.is_empty() && g.apis.is_empty();
        self.grants.iter().any(|g| match (g.scope, need) {
            (KeyScope::Admin, _) | (_, Need::Open | Need::Any) => true,
            (KeyScope::Ingest, Need::Ingest(m)) => open(g) || g.models.contains(m),
            (KeyScope::Query, Need::QueryModel(m)) => open(g) || g.models.contains(m),
            (KeyScope::Query, Need::QueryApi(a)) => open(g) || g.apis.contains(a),
            _ => false,
        })
    }
}

/// What a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// `/health`, `/ready`, preflights, the console's page.
    Open,
    /// Any valid credential (unknown paths).
    Any,
    /// The console's data, `/metrics`, `/openapi.json`.
    Admin,
    Ingest(String),
    /// Samples, export and subscribe of a model.
    QueryModel(String),
    QueryApi(String),
}

impl Need {
    pub fn of(method: &Method, path: &str, routes: &BTreeMap<String, Route>) -> Need {
        if method == Method::OPTIONS || path == "/health" || path == "/ready" {
            return Need::Open;
        }
        if let Some(route) = routes.get(path) {
            return match route {
                Route::Ingest(m) => Need::Ingest(m.clone()),
                Route::Samples(m) => Need::QueryModel(m.clone()),
            };
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["metrics"] | ["openapi.json"] => Need::Admin,
            // The console's page and assets hold no data (and a browser cannot send a header
            // when it opens a page); the page asks for a key and its data needs admin.
            ["console"] | ["console", ""] | ["console", "assets", _] => Need::Open,
            ["console", ..] => Need::Admin,
            ["ingest", m] => Need::Ingest(m.to_string()),
            ["api", m, "samples"] | ["export", m] | ["subscribe", m] => Need::QueryModel(m.to_string()),
            ["consumption", a] => Need::QueryApi(a.to_string()),
            _ => Need::Any,
        }
    }
}

/// The auth state of a running server.
pub struct Auth {
    pub settings: AuthSettings,
    pub keys: Arc<KeyStore>,
    jwt: Option<jwt::JwtVerifier>,
    limits: limit::Limits,
}

impl Auth {
    pub fn new(settings: AuthSettings, root: &std::path::Path) -> Result<Auth, jwt::JwtSetupError> {
        let jwt = settings.jwt.as_ref().map(|c| jwt::JwtVerifier::new(c, root)).transpose()?;
        let limits = limit::Limits::new();
        Ok(Auth { settings, keys: Arc::new(KeyStore::default()), jwt, limits })
    }

    fn authenticate(&self, token: &str) -> Result<Principal, Refusal> {
        if keys::split(token).is_some() {
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            return match self.keys.check(token, now) {
                Ok(k) => Ok(Principal::from_key(&k)),
                Err(keys::Refused::Unavailable) => Err(Refusal::Unavailable),
                Err(keys::Refused::Revoked) => Err(Refusal::Invalid("the API key is revoked".into())),
                Err(keys::Refused::Expired) => Err(Refusal::Invalid("the API key has expired".into())),
                Err(keys::Refused::Unknown) => Err(Refusal::Invalid("the API key is not valid".into())),
            };
        }
        match &self.jwt {
            Some(v) => v.verify(token).map_err(|e| Refusal::Invalid(format!("the token is not valid: {e}"))),
            None => Err(Refusal::Invalid("not an igloo API key (no server.jwt is configured for tokens)".into())),
        }
    }
}

enum Refusal {
    Missing,
    Invalid(String),
    Unavailable,
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware: authenticates, authorizes, rate-limits; a no-op with `server.auth: off`.
/// Lets the request through, or says why not (the answer to send instead). Called by
/// [`crate::http::edge`] on every request.
pub fn guard(state: &AppState, peer: SocketAddr, req: &mut Request) -> Result<(), ApiError> {
    let auth = &state.auth;
    if auth.settings.mode == AuthMode::Off {
        return Ok(());
    }
    let need = Need::of(req.method(), req.uri().path(), &state.routes.read().expect("routes lock"));
    if need == Need::Open {
        return Ok(());
    }
    admit(state, auth, peer, &need, req)
}

/// Authenticates, authorizes and rate-limits one request that needs `need`.
fn admit(state: &AppState, auth: &Auth, peer: SocketAddr, need: &Need, req: &mut Request) -> Result<(), ApiError> {
    let ip = format!("ip:{}", unmapped(peer.ip()));
    let rate = auth.settings.unauthenticated_rate;
    let ip_limited = |retry_after| ApiError::RateLimited {
        message: format!("too many requests without a valid credential from {}; retry later", peer.ip()),
        retry_after,
    };
    // An IP that used up its allowance of failures waits before any costly check: a guessed
    // secret for a real key id would otherwise cost an argon2 verification each. A token
    // verified before is cheap and passes.
    let token = bearer(req);
    if !token.is_some_and(|t| auth.keys.remembered(t)) {
        if let Some(wait) = auth.limits.exhausted(&ip, rate) {
            return Err(ip_limited(wait));
        }
    }
    let principal = match token.map(|t| auth.authenticate(t)).unwrap_or(Err(Refusal::Missing)) {
        Ok(p) => p,
        Err(refusal) => {
            auth.limits.take(&ip, rate).map_err(ip_limited)?;
            return Err(match refusal {
                Refusal::Missing => ApiError::Unauthenticated {
                    message: "this server requires a credential: send `Authorization: Bearer <API key or token>` (create a key with `igloo keys create`)".into(),
                    had_credential: false,
                },
                Refusal::Invalid(message) => ApiError::Unauthenticated { message, had_credential: true },
                Refusal::Unavailable => ApiError::KeysUnavailable,
            });
        }
    };
    if !principal.allows(need) {
        return Err(ApiError::Forbidden(forbidden_message(&principal, need)));
    }
    if !principal.bound.is_empty() && !principal.allows(&Need::Admin) {
        bind_parameters(state, &principal, need, req).map_err(ApiError::Forbidden)?;
    }
    if principal.rate > 0.0 {
        auth.limits.take(&principal.limiter, principal.rate).map_err(|retry_after| ApiError::RateLimited {
            message: format!("`{}` is limited to {} requests per second", principal.name, principal.rate),
            retry_after,
        })?;
    }
    Ok(())
}

/// `::ffff:1.2.3.4` and `1.2.3.4` are one client.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn forbidden_message(p: &Principal, need: &Need) -> String {
    let what = match need {
        Need::Admin => "this route needs the admin scope".to_string(),
        Need::Ingest(m) => format!("ingest into `{m}` is not granted"),
        Need::QueryModel(m) => format!("reading `{m}` is not granted"),
        Need::QueryApi(a) => format!("the API `{a}` is not granted"),
        Need::Open | Need::Any => "not granted".to_string(),
    };
    format!("`{}` may not do this: {what}", p.name)
}

/// A credential with bound parameters reads only through consumption APIs that take every
/// bound parameter, and the request's own values for them are replaced by the credential's.
fn bind_parameters(state: &AppState, p: &Principal, need: &Need, req: &mut Request) -> Result<(), String> {
    let Need::QueryApi(name) = need else {
        if matches!(need, Need::Ingest(_)) {
            return Ok(());
        }
        return Err(format!(
            "`{}` is bound to {}; it reads only through consumption APIs that take those parameters",
            p.name,
            p.bound.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    let Some(api) = state.api(name) else { return Ok(()) };
    if let Some(missing) = p.bound.keys().find(|b| !api.params.iter().any(|q| &q.name == *b)) {
        return Err(format!("the API `{name}` has no parameter `{missing}`, which this credential is bound to"));
    }
    let query = req.uri().query().unwrap_or("");
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|e| format!("the query string is not valid: {e}"))?
        .into_iter()
        .filter(|(k, _)| !p.bound.contains_key(k))
        .collect();
    pairs.extend(p.bound.iter().map(|(k, v)| (k.clone(), v.clone())));
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
    let uri = format!("{}?{encoded}", req.uri().path());
    *req.uri_mut() = uri.parse().map_err(|_| "cannot rewrite the request's parameters".to_string())?;
    Ok(())
}

/// CORS for `server.cors.origins`: preflights answered here, allowed origins echoed on every
/// answer. Requests from other origins get no CORS headers (the browser refuses them).
/// The request's `Origin` when `server.cors.origins` allows it: the value for
/// `Access-Control-Allow-Origin`.
pub fn cors_origin(state: &AppState, req: &Request) -> Option<HeaderValue> {
    let origins = &state.auth.settings.cors_origins;
    if origins.is_empty() {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    origins
        .iter()
        .any(|a| a == "*" || a == origin)
        .then(|| HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null")))
}

/// The answer to a browser's preflight from an allowed origin.
pub fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, content-encoding, idempotency-key"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// Marks an answer as readable by `origin`.
pub fn allow_origin(mut resp: Response, origin: HeaderValue) -> Response {
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: KeyScope, models: &[&str], apis: &[&str]) -> Principal {
        Principal {
            name: "k".into(),
            grants: vec![Grant {
                scope,
                models: models.iter().map(|s| s.to_string()).collect(),
                apis: apis.iter().map(|s| s.to_string()).collect(),
            }],
            rate: 0.0,
            bound: BTreeMap::new(),
            limiter: "k".into(),
        }
    }

    #[test]
    fn routes_need_what_they_do() {
        let mut routes = BTreeMap::new();
        routes.insert("/save".to_string(), Route::Ingest("M".into()));
        routes.insert("/api".to_string(), Route::Samples("M".into()));
        let need = |m: Method, p: &str| Need::of(&m, p, &routes);
        assert_eq!(need(Method::GET, "/health"), Need::Open);
        assert_eq!(need(Method::OPTIONS, "/ingest/M"), Need::Open);
        assert_eq!(need(Method::GET, "/metrics"), Need::Admin);
        assert_eq!(need(Method::GET, "/console/api/overview"), Need::Admin);
        assert_eq!(need(Method::GET, "/console"), Need::Open);
        assert_eq!(need(Method::GET, "/console/assets/console.js"), Need::Open);
        assert_eq!(need(Method::POST, "/save"), Need::Ingest("M".into()));
        assert_eq!(need(Method::GET, "/api"), Need::QueryModel("M".into()));
        assert_eq!(need(Method::GET, "/export/M"), Need::QueryModel("M".into()));
        assert_eq!(need(Method::GET, "/consumption/top"), Need::QueryApi("top".into()));
        assert_eq!(need(Method::GET, "/nope"), Need::Any);
    }

    #[test]
    fn grants_cover_their_scope_and_targets_only() {
        let ingest_m = grant(KeyScope::Ingest, &["M"], &[]);
        assert!(ingest_m.allows(&Need::Ingest("M".into())));
        assert!(!ingest_m.allows(&Need::Ingest("N".into())));
        assert!(!ingest_m.allows(&Need::QueryModel("M".into())));
        assert!(!ingest_m.allows(&Need::Admin));
        let query = grant(KeyScope::Query, &[], &[]);
        assert!(query.allows(&Need::QueryApi("any".into())) && query.allows(&Need::QueryModel("M".into())));
        let api_only = grant(KeyScope::Query, &[], &["top"]);
        assert!(api_only.allows(&Need::QueryApi("top".into())) && !api_only.allows(&Need::QueryModel("M".into())));
        assert!(grant(KeyScope::Admin, &[], &[]).allows(&Need::Admin));
    }
}
