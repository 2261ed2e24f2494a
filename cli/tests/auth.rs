//! Who may do what, against a real `igloo serve` (ClickHouse 18.16, tansu): the default under
//! `igloo serve` is `server.auth: required`; API keys made by `igloo keys` (hashed in
//! ClickHouse, never stored in plaintext) with scopes, models, APIs, rates and revocation;
//! JWTs (HS256 from the environment, RS256 from a JWKS file, ES256 from a PEM key) with issuer,
//! audience, expiry, scopes and a claim bound to an API parameter; the per-IP limit; CORS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};

mod support;
use support::*;

/// `igloo serve ARGS` on a new port beside `engines`, with `env`; `server.auth` is left to
/// igloo.yaml and igloo's default unless `env` sets it.
fn serve_with(root: &Path, engines: &Ports, args: &[&str], env: &[(&str, &str)]) -> (Dev, Ports) {
    serve_beside(root, engines, args, |cmd| {
        cmd.env_remove("IGLOO_SERVER_AUTH").envs(env.iter().copied());
    })
}

fn post(url: &str, token: Option<&str>, body: &str) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    http_post(url, &headers, body.to_string())
}

fn get_as(url: &str, token: &str) -> (u16, String) {
    let (status, _, body) = get_with(url, &[("Authorization", &format!("Bearer {token}"))]);
    (status, body)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn keys_scopes_rates_and_revocation_under_igloo_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[]);
    // The default under `igloo serve`: credentials required.
    let (mut server, ports) = serve_with(&root, &engine_ports, &[], &[("IGLOO_SERVER_UNAUTHENTICATED_RATE", "5")]);
    wait_ready(&ports);
    let ingest = ports.api("/ingest/Measurement");
    let event = "{\"time\":1,\"tag\":\"a\",\"values\":[1]}\n";

    // Open routes stay open; the rest asks for a credential.
    assert_eq!(get(&ports.api("/ready")).0, 200);
    let r = post(&ingest, None, event);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Authorization: Bearer"), "{}", r.body);
    let (status, _, _) = get(&ports.api("/metrics"));
    assert_eq!(status, 401);
    let resp =
        http().post(&ingest).header("Authorization", "Bearer igloo_0123456789abcdef_00").body(event).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], r#"Bearer realm="igloo", error="invalid_token""#);

    // Keys: printed once, stored hashed.
    let ingest_key = create_key(
        &root,
        &ports,
        &["--name", "ingester", "--scope", "ingest", "--model", "Measurement", "--rate", "3/s"],
    );
    let query_key = create_key(&root, &ports, &["--name", "dashboards", "--scope", "query", "--api", "tag_stats"]);
    let admin_key = create_key(&root, &ports, &["--name", "ops", "--scope", "admin"]);
    let dup = keys(&root, &ports, &["create", "--name", "ops", "--scope", "admin"]);
    assert!(!dup.status.success() && String::from_utf8_lossy(&dup.stderr).contains("a key named `ops` exists"));
    let bad = keys(&root, &ports, &["create", "--name", "x", "--scope", "ingest", "--model", "Nope"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--model `Nope` is not a model of the schema (Measurement)"));
    let stored = ports.clickhouse().execute("SELECT groupArray(hash) FROM devapp._igloo_keys").unwrap();
    for token in [&ingest_key, &query_key, &admin_key] {
        let secret = token.rsplit('_').next().unwrap();
        assert!(!stored.contains(secret), "a secret is stored in plaintext");
    }
    assert_eq!(stored.matches("$argon2id$").count(), 3, "{stored}");
    let listed = keys(&root, &ports, &["list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("ingester") && listed.contains("ingest; models Measurement; 3/s") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&ingest_key) && !listed.contains("argon2"), "{listed}");

    // Scopes (the server reads new keys within seconds).
    eventually(Duration::from_secs(10), "the ingest key accepted", || {
        (post(&ingest, Some(&ingest_key), event).status == 200).then_some(())
    });
    let r = post(&ingest, Some(&query_key), event);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("`dashboards` may not do this: ingest into `Measurement` is not granted"), "{}", r.body);
    let stats = ports.api("/consumption/tag_stats?start=0&end=10");
    assert_eq!(get_as(&stats, &query_key).0, 200);
    assert_eq!(get_as(&stats, &ingest_key).0, 403);
    assert_eq!(get_as(&ports.api("/export/Measurement"), &query_key).0, 403, "the key names only an API");
    assert_eq!(get_as(&ports.api("/metrics"), &query_key).0, 403);
    assert_eq!(get_as(&ports.api("/metrics"), &admin_key).0, 200);
    assert_eq!(get(&ports.api("/console")).0, 200, "the console's page opens and asks for a key");
    assert_eq!(get(&ports.api("/console/api/overview")).0, 401);
    assert_eq!(get_as(&ports.api("/console/api/overview"), &query_key).0, 403);
    assert_eq!(get_as(&ports.api("/console/api/overview"), &admin_key).0, 200);
    assert_eq!(get_as(&ports.api("/openapi.json"), &admin_key).0, 200);

    // The key's rate: 3/s, then 429 with Retry-After.
    std::thread::sleep(Duration::from_millis(1100));
    let statuses: Vec<u16> = (0..6).map(|_| post(&ingest, Some(&ingest_key), event).status).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    let limited = post(&ingest, Some(&ingest_key), event);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.retry_after.is_some() && limited.body.contains("limited to 3 requests per second"));

    // Without a valid credential, one IP gets 5 answers a second, then 429.
    std::thread::sleep(Duration::from_millis(1100));
    let unauth: Vec<u16> = (0..8).map(|_| post(&ingest, None, event).status).collect();
    assert!(unauth.contains(&401) && unauth.contains(&429), "{unauth:?}");

    // Revocation: refused everywhere within 5 s.
    let revoke = keys(&root, &ports, &["revoke", "ingester"]);
    assert!(String::from_utf8_lossy(&revoke.stderr).contains("--yes"), "no terminal: asks for --yes");
    let revoke = keys(&root, &ports, &["revoke", "ingester", "--yes"]);
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    let revoked_at = std::time::Instant::now();
    eventually(Duration::from_secs(5), "the revoked key refused", || {
        std::thread::sleep(Duration::from_millis(350));
        let r = post(&ingest, Some(&ingest_key), event);
        (r.status == 401 && r.body.contains("revoked")).then_some(())
    });
    println!("revocation took effect after {:?}", revoked_at.elapsed());
    let listed = String::from_utf8_lossy(&keys(&root, &ports, &["list", "--json"]).stdout).to_string();
    assert!(listed.lines().any(|l| l.contains("\"ingester\"") && l.contains("\"revoked\"")), "{listed}");

    // Accepted events arrived (auth sits in front of ingest, not in the way of it).
    eventually(Duration::from_secs(20), "accepted events written", || {
        let n = ports.clickhouse().execute("SELECT count() FROM devapp.Measurement").ok()?;
        (n.trim().parse::<u64>().ok()? >= 4).then_some(())
    });
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn jwts_scopes_bindings_key_sources_and_cors() {
    let tmp = tempfile::tempdir().unwrap();
    let api = "-- Events of one tag.\n-- @param tag String  the tag\nSELECT tag, count() AS events FROM Measurement WHERE tag = {tag} GROUP BY tag\n";
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[("apis/tag_events.sql", api)]);
    // RS256 through a JWKS file; ES256 through a PEM public key.
    openssl(&["genrsa", "-out", "rsa.pem", "2048"], &root);
    openssl(&["rsa", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"], &root);
    let modulus = Command::new("openssl")
        .args(["rsa", "-in", "rsa.pem", "-noout", "-modulus"])
        .current_dir(&root)
        .output()
        .unwrap();
    let hex_n = String::from_utf8_lossy(&modulus.stdout).trim().trim_start_matches("Modulus=").to_string();
    let n: Vec<u8> = (0..hex_n.len()).step_by(2).map(|i| u8::from_str_radix(&hex_n[i..i + 2], 16).unwrap()).collect();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": b64url(&n), "e": "AQAB"}]});
    std::fs::write(root.join("jwks.json"), jwks.to_string()).unwrap();
    openssl(&["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "ec.pem"], &root);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-out", "ec8.pem"], &root);
    openssl(&["ec", "-in", "ec.pem", "-pubout", "-out", "ec.pub"], &root);

    let config = std::fs::read_to_string(root.join("igloo.yaml")).unwrap();
    let start = |jwt: &str| {
        let with = config.replace(
            "server:\n",
            &format!("server:\n  auth: required\n  cors:\n    origins: [\"https://app.example.com\"]\n  jwt:\n{jwt}"),
        );
        std::fs::write(root.join("igloo.yaml"), with).unwrap();
        let (server, ports) =
            serve_with(&root, &engine_ports, &[], &[("IGLOO_TEST_JWT_SECRET", "a-secret-of-enough-length-for-hs256")]);
        wait_ready(&ports);
        (server, ports)
    };
    let claims = |scope: &str, extra: serde_json::Value| {
        let mut c = serde_json::json!({"sub": "tenant-a-app", "iss": "https://issuer.test", "aud": "igloo", "exp": now() + 600, "scope": scope, "tenant": "a"});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };

    // HS256, secret from the environment; issuer, audience, expiry; `tag` bound to `tenant`.
    let (mut server, ports) = start(
        "    secret_env: IGLOO_TEST_JWT_SECRET\n    issuer: https://issuer.test\n    audience: igloo\n    bind:\n      tag: tenant\n",
    );
    let hs = EncodingKey::from_secret(b"a-secret-of-enough-length-for-hs256");
    let token = |c: &serde_json::Value| encode(&Header::default(), c, &hs).unwrap();
    let ingest = ports.api("/ingest/Measurement");
    let writer = token(&claims("ingest", serde_json::json!({})));
    let body: String = ["a", "a", "b"]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{{\"time\":{i},\"tag\":\"{t}\",\"values\":[1]}}\n"))
        .collect();
    let r = post(&ingest, Some(&writer), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    for (what, bad) in [
        ("expired", claims("ingest", serde_json::json!({"exp": now() - 120}))),
        ("another audience", claims("ingest", serde_json::json!({"aud": "other"}))),
        ("another issuer", claims("ingest", serde_json::json!({"iss": "https://evil.test"}))),
    ] {
        let r = post(&ingest, Some(&token(&bad)), event_of());
        assert_eq!(r.status, 401, "{what}: {}", r.body);
    }
    let forged =
        encode(&Header::default(), &claims("admin", serde_json::json!({})), &EncodingKey::from_secret(b"guessed"))
            .unwrap();
    assert_eq!(post(&ingest, Some(&forged), event_of()).status, 401);
    assert_eq!(post(&ingest, Some(&token(&claims("query", serde_json::json!({})))), event_of()).status, 403);
    // The bound claim wins over the request's own value: tenant a sees only tag a.
    let reader = token(&claims("query", serde_json::json!({})));
    let url = ports.api("/consumption/tag_events?tag=b");
    let rows = eventually(Duration::from_secs(20), "tenant a's rows", || {
        let (status, body) = get_as(&url, &reader);
        assert_eq!(status, 200, "{body}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["tag"], "a");
    assert_eq!(rows[0]["events"], 2);
    let (status, body) = get_as(&ports.api("/consumption/tag_stats?start=0&end=10"), &reader);
    assert_eq!(status, 403, "an API without the bound parameter is closed to a bound token: {body}");
    assert_eq!(get_as(&ports.api("/export/Measurement"), &reader).0, 403);
    let unbound =
        token(&serde_json::json!({"iss": "https://issuer.test", "aud": "igloo", "exp": now() + 60, "scope": "query"}));
    assert_eq!(get_as(&url, &unbound).0, 401, "a token without the bound claim is refused");

    // CORS: the configured origin gets its preflight and headers; others get none.
    let pre = http()
        .request(reqwest::Method::OPTIONS, &ingest)
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let other = http().post(&ingest).header("Origin", "https://evil.test").send().unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());

    // RS256 from a JWKS file (the token's kid picks the key).
    let (mut server, ports2) = start("    jwks: jwks.json\n");
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(root.join("rsa.pem")).unwrap()).unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    let c = serde_json::json!({"sub": "svc", "exp": now() + 60, "scope": ["ingest"]});
    assert_eq!(
        post(&ports2.api("/ingest/Measurement"), Some(&encode(&header, &c, &rsa).unwrap()), event_of()).status,
        200
    );
    header.kid = Some("k2".into());
    let r = post(&ports2.api("/ingest/Measurement"), Some(&encode(&header, &c, &rsa).unwrap()), event_of());
    assert!(r.status == 401 && r.body.contains("no key `k2` in the JWKS"), "{}", r.body);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());

    // ES256 from a PEM public key; an HS256 token is refused there.
    let (mut server, ports3) = start("    public_key: ec.pub\n");
    let ec = EncodingKey::from_ec_pem(&std::fs::read(root.join("ec8.pem")).unwrap()).unwrap();
    let c = serde_json::json!({"sub": "svc", "exp": now() + 60, "scope": "ingest:Measurement"});
    let es = encode(&Header::new(jsonwebtoken::Algorithm::ES256), &c, &ec).unwrap();
    assert_eq!(post(&ports3.api("/ingest/Measurement"), Some(&es), event_of()).status, 200);
    let hs_there = encode(&Header::default(), &c, &hs).unwrap();
    assert_eq!(post(&ports3.api("/ingest/Measurement"), Some(&hs_there), event_of()).status, 401);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
}

fn event_of() -> &'static str {
    "{\"time\":9,\"tag\":\"z\",\"values\":[1]}\n"
}

#[test]
fn https_with_server_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[]);
    // A CA and a server certificate it signed (rustls refuses a CA certificate as a server's).
    let ca = "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca";
    openssl(&ca.split(' ').collect::<Vec<_>>(), &root);
    let csr = "req -newkey rsa:2048 -nodes -keyout key.pem -out leaf.csr -subj /CN=127.0.0.1";
    openssl(&csr.split(' ').collect::<Vec<_>>(), &root);
    std::fs::write(
        root.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let sign = "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 1 -extfile ext.cnf";
    openssl(&sign.split(' ').collect::<Vec<_>>(), &root);
    let tls =
        [("IGLOO_SERVER_AUTH", "off"), ("IGLOO_SERVER_TLS_CERT", "cert.pem"), ("IGLOO_SERVER_TLS_KEY", "key.pem")];
    let (mut server, ports) = serve_with(&root, &engine_ports, &["--role", "ingest"], &tls);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(root.join("ca.pem")).unwrap()).unwrap();
    let https =
        reqwest::blocking::Client::builder().add_root_certificate(ca).timeout(Duration::from_secs(10)).build().unwrap();
    let base = format!("https://127.0.0.1:{}", ports.server);
    eventually(START, "HTTPS up", || https.get(format!("{base}/health")).send().ok().filter(|r| r.status() == 200));
    let r = https
        .post(format!("{base}/ingest/Measurement"))
        .header("Content-Type", "application/x-ndjson")
        .body("{\"time\":1,\"tag\":\"tls\",\"values\":[1]}\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP on the TLS port gets no answer; a client that does not trust the certificate
    // is refused by its own TLS check.
    assert!(http().get(ports.api("/health")).send().is_err());
    let untrusting = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(untrusting.get(format!("{base}/health")).send().is_err());
    // The server keeps answering after the failed handshakes.
    assert_eq!(https.get(format!("{base}/health")).send().unwrap().status(), 200);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
}
