//! The auth subgraph as its own service, on a real PostgreSQL: every rule tried against.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pyairtable_kit::authority::AccessClaims;
use pyairtable_kit::identity::IDENTITY_HEADER;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, outbox};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use serde_json::{Value, json};
use uuid::Uuid;

const SIGN_UP: &str = "mutation($email: String!, $password: String!, $name: String!) {
    signUp(input: { email: $email, password: $password, displayName: $name }) {
        tokens { accessToken refreshToken expiresIn tokenType } user { id } } }";
const LOG_IN: &str = "mutation($email: String!, $password: String!, $code: String) {
    logIn(input: { email: $email, password: $password, code: $code }) {
        tokens { accessToken refreshToken } secondFactorRequired } }";
const REFRESH: &str =
    "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken refreshToken } }";
const PASSWORD: &str = "correct horse battery staple";

struct Account {
    id: Uuid,
    session: Uuid,
    access: String,
    refresh: String,
}

async fn harness() -> SubgraphHarness {
    // The notifications subgraph sends the password reset emails.
    SubgraphHarness::start_after(&[pyairtable_notifications::subgraph], pyairtable_auth::subgraph).await
}

fn anonymous(h: &SubgraphHarness) -> GraphQLClient {
    h.client(&Caller { ip: Some("203.0.113.7".into()), ..Caller::anonymous() })
}

/// The caller the router would forward for this account's access token.
fn signed_in(h: &SubgraphHarness, account: &Account) -> GraphQLClient {
    h.client(&Caller {
        user_id: Some(account.id),
        session_id: Some(account.session),
        scopes: vec!["*".into()],
        ..Caller::default()
    })
}

async fn jwks(h: &SubgraphHarness) -> Value {
    let url = format!("http://{}/.well-known/jwks.json", h.server.addr);
    reqwest::get(url).await.expect("jwks").json().await.expect("json")
}

/// Verifies an access token against the service's JWKS, as the router does.
async fn verify(h: &SubgraphHarness, token: &str) -> AccessClaims {
    let kid = jsonwebtoken::decode_header(token).expect("header").kid.expect("kid");
    let keys = jwks(h).await;
    let key = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key = DecodingKey::from_ed_components(key["x"].as_str().expect("x")).expect("key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["pyairtable-api"]);
    validation.set_issuer(&["pyairtable"]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &validation).expect("valid token").claims
}

async fn sign_up(h: &SubgraphHarness, email: &str) -> Account {
    let data =
        anonymous(h).data(SIGN_UP, json!({ "email": email, "password": PASSWORD, "name": "Ada" })).await;
    account(h, &data["signUp"]["tokens"]).await
}

async fn account(h: &SubgraphHarness, tokens: &Value) -> Account {
    let access = tokens["accessToken"].as_str().expect("access token").to_owned();
    let claims = verify(h, &access).await;
    Account {
        id: claims.sub,
        session: claims.sid,
        access,
        refresh: tokens["refreshToken"].as_str().expect("refresh").to_owned(),
    }
}

async fn session_live(h: &SubgraphHarness, session: Uuid) -> bool {
    let identity = h.key.sign(&Caller::anonymous(), chrono::Utc::now().timestamp());
    let response = reqwest::Client::new()
        .get(format!("http://{}/internal/sessions/{session}", h.server.addr))
        .header(IDENTITY_HEADER, identity)
        .send()
        .await
        .expect("answers");
    response.json::<Value>().await.expect("json")["live"].as_bool().expect("live")
}

/// The link token in the last email sent to `to`.
fn link_token(h: &SubgraphHarness, to: &str) -> String {
    let mails = outbox(&h.kit.config.data_dir.join("outbox"));
    let mail = mails.iter().rev().find(|m| m.to.contains(to)).expect("an email");
    let at = mail.text.find("token=").expect("a link") + "token=".len();
    mail.text[at..].split_whitespace().next().expect("token").to_owned()
}

#[tokio::test]
async fn access_tokens_live_as_long_as_configured() {
    let h = SubgraphHarness::start_on(
        pyairtable_kit::testing::test_database().await,
        &[("PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS", "3600")],
        &[pyairtable_notifications::subgraph],
        pyairtable_auth::subgraph,
    )
    .await;
    let data = anonymous(&h)
        .data(SIGN_UP, json!({ "email": "long@example.com", "password": PASSWORD, "name": "Long" }))
        .await;
    let tokens = &data["signUp"]["tokens"];
    assert_eq!(tokens["expiresIn"].as_i64(), Some(3600));
    let claims = verify(&h, tokens["accessToken"].as_str().expect("an access token")).await;
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[tokio::test]
async fn sign_up_issues_verifiable_tokens_and_a_single_use_verification_link() {
    let h = harness().await;
    let data = anonymous(&h)
        .data(SIGN_UP, json!({ "email": "Ada@Example.com", "password": PASSWORD, "name": "Ada" }))
        .await;
    let tokens = &data["signUp"]["tokens"];
    assert_eq!((tokens["expiresIn"].as_i64(), tokens["tokenType"].as_str()), (Some(600), Some("Bearer")));
    let account = account(&h, tokens).await;
    let claims = verify(&h, &account.access).await;
    assert_eq!(claims.exp - claims.iat, 600);
    assert_eq!(data["signUp"]["user"]["id"], account.id.to_string());
    assert!(account.refresh.starts_with("rt_"));

    let me = signed_in(&h, &account);
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { emailVerified } } }";
    let reps = json!({ "r": [{ "__typename": "User", "id": account.id }] });
    assert_eq!(me.data(query, reps.clone()).await["_entities"][0]["emailVerified"], false);
    assert_eq!(
        anonymous(&h).data(query, reps.clone()).await["_entities"][0]["emailVerified"],
        Value::Null,
        "private"
    );

    let first = link_token(&h, "ada@example.com");
    let resend = "mutation { resendVerificationEmail }";
    assert_eq!(me.data(resend, json!({})).await["resendVerificationEmail"], true);
    let token = link_token(&h, "ada@example.com");
    assert_ne!(token, first, "a new link");
    let verify_email = "mutation($t: String!) { verifyEmail(token: $t) }";
    assert_eq!(anonymous(&h).data(verify_email, json!({ "t": token })).await["verifyEmail"], true);
    assert_eq!(me.data(query, reps).await["_entities"][0]["emailVerified"], true);
    assert_eq!(
        anonymous(&h).error_code(verify_email, json!({ "t": token })).await,
        "BAD_USER_INPUT",
        "single use"
    );
    assert_eq!(anonymous(&h).error_code(verify_email, json!({ "t": "forged" })).await, "BAD_USER_INPUT");
    assert_eq!(me.data(resend, json!({})).await["resendVerificationEmail"], false, "already confirmed");

    // The profile event is in the log for the users subgraph.
    let events: i64 = sqlx::query_scalar("select count(*) from kit.events where topic = 'user.registered'")
        .fetch_one(&h.kit.db)
        .await
        .expect("count");
    assert_eq!(events, 1);
}

#[tokio::test]
async fn sign_up_refuses_weak_passwords_bad_emails_and_taken_addresses() {
    let h = harness().await;
    let client = anonymous(&h);
    sign_up(&h, "taken@example.com").await;
    let cases = [
        (json!({ "email": "new@example.com", "password": "short", "name": "N" }), "BAD_USER_INPUT"),
        (json!({ "email": "new@example.com", "password": "password123", "name": "N" }), "BAD_USER_INPUT"),
        (json!({ "email": "new@example.com", "password": "x".repeat(129), "name": "N" }), "BAD_USER_INPUT"),
        (json!({ "email": "not-an-email", "password": PASSWORD, "name": "N" }), "BAD_USER_INPUT"),
        (json!({ "email": "new@example.com", "password": PASSWORD, "name": "  " }), "BAD_USER_INPUT"),
        (json!({ "email": "TAKEN@example.com", "password": PASSWORD, "name": "N" }), "CONFLICT"),
    ];
    for (variables, code) in cases {
        assert_eq!(client.error_code(SIGN_UP, variables.clone()).await, code, "{variables}");
    }
}

#[tokio::test]
async fn wrong_email_and_wrong_password_look_the_same_in_answer_and_time() {
    let h = harness().await;
    sign_up(&h, "known@example.com").await;
    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for i in 0..8 {
        // Distinct IPs and accounts keep the brute-force limits out of the measurement.
        let ip = format!("198.51.100.{i}");
        let client = h.client(&Caller { ip: Some(ip), ..Caller::anonymous() });
        let started = Instant::now();
        let (_, a) = client
            .send(LOG_IN, json!({ "email": "known@example.com", "password": format!("wrong {i}") }))
            .await;
        wrong_password.push(started.elapsed());
        let started = Instant::now();
        let (_, b) = client
            .send(LOG_IN, json!({ "email": format!("nobody{i}@example.com"), "password": "wrong" }))
            .await;
        unknown_email.push(started.elapsed());
        assert_eq!(a["errors"][0]["message"], b["errors"][0]["message"]);
        assert_eq!(a["errors"][0]["extensions"], b["errors"][0]["extensions"]);
        assert_eq!(a["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        if i == 3 {
            // Clear the account's counter so the known email is not locked mid-measurement.
            client.data(LOG_IN, json!({ "email": "known@example.com", "password": PASSWORD })).await;
        }
    }
    wrong_password.sort();
    unknown_email.sort();
    let (a, b) = (wrong_password[4].as_secs_f64(), unknown_email[4].as_secs_f64());
    let ratio = a.max(b) / a.min(b);
    assert!(ratio < 1.6, "median wrong password {a:.4} s vs unknown email {b:.4} s");
}

#[tokio::test]
async fn parallel_wrong_passwords_cannot_beat_the_limit() {
    let h = harness().await;
    sign_up(&h, "target@example.com").await;
    let attempts = (0..20).map(|i| {
        let client = h.client(&Caller { ip: Some(format!("192.0.2.{i}")), ..Caller::anonymous() });
        tokio::spawn(async move {
            let (_, body) = client
                .send(LOG_IN, json!({ "email": "target@example.com", "password": format!("guess {i}") }))
                .await;
            body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned()
        })
    });
    let mut codes = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        codes.push(attempt.await.expect("attempt"));
    }
    let checked = codes.iter().filter(|c| *c == "UNAUTHENTICATED").count();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert_eq!(checked, 5, "exactly the limit was checked: {codes:?}");
    assert_eq!(limited, 15, "{codes:?}");
    // Locked now: even the right password waits, and the answer says for how long.
    let (_, body) =
        anonymous(&h).send(LOG_IN, json!({ "email": "target@example.com", "password": PASSWORD })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s > 0), "{body}");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_session() {
    let h = harness().await;
    let account = sign_up(&h, "rotate@example.com").await;
    let client = anonymous(&h);
    let first = client.data(REFRESH, json!({ "token": account.refresh })).await["refreshSession"].clone();
    let next = first["refreshToken"].as_str().expect("new refresh").to_owned();
    assert_ne!(next, account.refresh);
    assert_eq!(verify(&h, first["accessToken"].as_str().expect("access")).await.sid, account.session);

    // Two tabs refreshing with the same token at once: both get through (grace period).
    let (a, b) = tokio::join!(
        client.send(REFRESH, json!({ "token": next })),
        client.send(REFRESH, json!({ "token": next }))
    );
    assert!(a.1.get("errors").is_none() && b.1.get("errors").is_none(), "{a:?} {b:?}");
    let latest = a.1["data"]["refreshSession"]["refreshToken"].as_str().expect("token").to_owned();

    // The first token, replayed after the grace period: stolen. The whole family dies.
    sqlx::query(
        "update auth.refresh_tokens set used_at = now() - interval '1 minute' where used_at is not null",
    )
    .execute(&h.kit.db)
    .await
    .expect("age");
    assert_eq!(client.error_code(REFRESH, json!({ "token": account.refresh })).await, "UNAUTHENTICATED");
    assert_eq!(client.error_code(REFRESH, json!({ "token": latest })).await, "UNAUTHENTICATED");
    assert!(!session_live(&h, account.session).await, "the session is revoked");
    assert_eq!(client.error_code(REFRESH, json!({ "token": "rt_forged" })).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn log_out_and_password_changes_end_sessions() {
    let h = harness().await;
    let one = sign_up(&h, "sessions@example.com").await;
    let login = |ip: &'static str| {
        let client = h.client(&Caller { ip: Some(ip.into()), ..Caller::anonymous() });
        async move { client.data(LOG_IN, json!({ "email": "sessions@example.com", "password": PASSWORD })).await }
    };
    let two = account(&h, &login("192.0.2.1").await["logIn"]["tokens"]).await;
    let three = account(&h, &login("192.0.2.2").await["logIn"]["tokens"]).await;
    let sessions = signed_in(&h, &one).data("{ mySessions { id current ip } }", json!({})).await;
    assert_eq!(sessions["mySessions"].as_array().map(Vec::len), Some(3));
    let current: Vec<&Value> =
        sessions["mySessions"].as_array().expect("list").iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], one.session.to_string());
    let ips: Vec<&str> =
        sessions["mySessions"].as_array().expect("list").iter().filter_map(|s| s["ip"].as_str()).collect();
    assert!(ips.contains(&"192.0.2.1") && ips.contains(&"192.0.2.2"), "{ips:?}");

    assert_eq!(signed_in(&h, &three).data("mutation { logOut }", json!({})).await["logOut"], true);
    assert!(!session_live(&h, three.session).await);
    assert_eq!(anonymous(&h).error_code(REFRESH, json!({ "token": three.refresh })).await, "UNAUTHENTICATED");

    let change =
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let me = signed_in(&h, &one);
    assert_eq!(
        me.error_code(change, json!({ "c": "wrong", "n": "a new long passphrase" })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(me.error_code(change, json!({ "c": PASSWORD, "n": "123456789" })).await, "BAD_USER_INPUT");
    me.data(change, json!({ "c": PASSWORD, "n": "a new long passphrase" })).await;
    assert!(session_live(&h, one.session).await, "the current session stays");
    assert!(!session_live(&h, two.session).await, "other sessions end");
    let old = anonymous(&h)
        .error_code(LOG_IN, json!({ "email": "sessions@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(old, "UNAUTHENTICATED");
    assert_eq!(anonymous(&h).error_code("mutation { logOut }", json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn password_reset_links_are_single_use_and_end_every_session() {
    let h = harness().await;
    let account = sign_up(&h, "forgot@example.com").await;
    let request = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    let client = anonymous(&h);
    assert_eq!(
        client.data(request, json!({ "e": "nobody@example.com" })).await["requestPasswordReset"],
        true
    );
    assert_eq!(
        client.data(request, json!({ "e": "forgot@example.com" })).await["requestPasswordReset"],
        true
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        let mails = outbox(&h.kit.config.data_dir.join("outbox"));
        if mails.iter().any(|m| m.subject.contains("Reset")) {
            break link_token(&h, "forgot@example.com");
        }
        assert!(Instant::now() < deadline, "no reset email");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let outbox_mails = outbox(&h.kit.config.data_dir.join("outbox"));
    assert!(!outbox_mails.iter().any(|m| m.to.contains("nobody@")), "no email for unknown addresses");

    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    assert_eq!(client.error_code(reset, json!({ "t": token, "p": "qwerty123" })).await, "BAD_USER_INPUT");
    client.data(reset, json!({ "t": token, "p": "brand new passphrase" })).await;
    assert_eq!(
        client.error_code(reset, json!({ "t": token, "p": "another passphrase" })).await,
        "BAD_USER_INPUT"
    );
    assert!(!session_live(&h, account.session).await, "every session ends");
    let data = client
        .data(LOG_IN, json!({ "email": "forgot@example.com", "password": "brand new passphrase" }))
        .await;
    assert!(data["logIn"]["tokens"]["accessToken"].is_string());
    // Asking again and again does not flood the mailbox: five per address, then a pause.
    for _ in 0..8 {
        let asked = client.data(request, json!({ "e": "forgot@example.com" })).await;
        assert_eq!(asked["requestPasswordReset"], true, "the answer never changes");
    }
    let resets = || {
        outbox(&h.kit.config.data_dir.join("outbox")).iter().filter(|m| m.subject.contains("Reset")).count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while resets() < 5 {
        assert!(Instant::now() < deadline, "only {} reset emails", resets());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(resets(), 5, "the first one and four more, then the limit");
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let h = harness().await;
    let account = sign_up(&h, "keys@example.com").await;
    let me = signed_in(&h, &account);
    let create = "mutation($n: String!, $s: [String!]!) {
        createApiKey(input: { name: $n, scopes: $s, expiresInDays: 30 }) { secret apiKey { id prefix scopes } } }";
    let created =
        me.data(create, json!({ "n": "CI", "s": ["workspaces:read"] })).await["createApiKey"].clone();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("pat_")
            && secret.starts_with(created["apiKey"]["prefix"].as_str().expect("prefix"))
    );
    let listed = me.data("{ myApiKeys { id scopes } }", json!({})).await;
    assert_eq!(
        listed["myApiKeys"],
        json!([{ "id": created["apiKey"]["id"], "scopes": ["workspaces:read"] }])
    );
    assert!(!listed.to_string().contains(&secret), "never shown again");
    let stored: i64 = sqlx::query_scalar("select count(*) from auth.api_keys where hash = $1")
        .bind(secret.as_bytes())
        .fetch_one(&h.kit.db)
        .await
        .expect("count");
    assert_eq!(stored, 0, "stored hashed, not as given");

    let resolve = |token: String| {
        let identity = h.key.sign(&Caller::anonymous(), chrono::Utc::now().timestamp());
        let url = format!("http://{}/internal/api-key", h.server.addr);
        async move {
            let request = reqwest::Client::new()
                .post(url)
                .header(IDENTITY_HEADER, identity)
                .json(&json!({ "token": token }));
            request.send().await.expect("answers").json::<Value>().await.expect("json")
        }
    };
    let caller = resolve(secret.clone()).await;
    assert_eq!(caller["caller"]["sub"], account.id.to_string());
    assert_eq!(caller["caller"]["scopes"], json!(["workspaces:read"]));
    assert_eq!(resolve("pat_guess".into()).await["caller"], Value::Null);

    // A key cannot mint keys; bad scopes are refused.
    let by_key = h.client(&Caller {
        user_id: Some(account.id),
        scopes: vec!["workspaces:read".into()],
        ..Caller::default()
    });
    assert_eq!(by_key.error_code(create, json!({ "n": "x", "s": ["read"] })).await, "FORBIDDEN");
    assert_eq!(me.error_code(create, json!({ "n": "x", "s": ["*"] })).await, "BAD_USER_INPUT");

    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) }";
    assert_eq!(me.data(revoke, json!({ "id": created["apiKey"]["id"] })).await["revokeApiKey"], true);
    assert_eq!(resolve(secret).await["caller"], Value::Null);

    // The internal routes answer only the router.
    let forged = IdentityKey::new(&Secret::new("not-the-internal-secret-not-the-internal-secret"));
    let response = reqwest::Client::new()
        .post(format!("http://{}/internal/api-key", h.server.addr))
        .header(IDENTITY_HEADER, forged.sign(&Caller::anonymous(), chrono::Utc::now().timestamp()))
        .json(&json!({ "token": "pat_x" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_second_factor_is_required_once_enabled_and_codes_work_once() {
    let h = harness().await;
    let account = sign_up(&h, "mfa@example.com").await;
    let me = signed_in(&h, &account);
    let begin = me.data("mutation { beginTwoFactorEnrollment { secret otpauthUrl } }", json!({})).await;
    let secret = begin["beginTwoFactorEnrollment"]["secret"].as_str().expect("secret").to_owned();
    assert!(
        begin["beginTwoFactorEnrollment"]["otpauthUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/"))
    );
    let confirm = "mutation($c: String!) { confirmTwoFactorEnrollment(code: $c) }";
    assert_eq!(me.error_code(confirm, json!({ "c": "000000" })).await, "BAD_USER_INPUT");
    let code = pyairtable_auth::mfa::current_code(&secret).expect("code");
    let codes = me.data(confirm, json!({ "c": code })).await["confirmTwoFactorEnrollment"].clone();
    let recovery: Vec<String> = serde_json::from_value(codes).expect("codes");
    assert_eq!(recovery.len(), 10);

    let client = anonymous(&h);
    let without = client.data(LOG_IN, json!({ "email": "mfa@example.com", "password": PASSWORD })).await;
    assert_eq!(without["logIn"], json!({ "tokens": null, "secondFactorRequired": true }));
    let replay = client
        .error_code(LOG_IN, json!({ "email": "mfa@example.com", "password": PASSWORD, "code": code }))
        .await;
    assert_eq!(replay, "UNAUTHENTICATED", "a TOTP code is good once");
    let with = json!({ "email": "mfa@example.com", "password": PASSWORD, "code": recovery[0] });
    let data = client.data(LOG_IN, with.clone()).await;
    assert!(data["logIn"]["tokens"]["accessToken"].is_string());
    assert_eq!(client.error_code(LOG_IN, with).await, "UNAUTHENTICATED", "a recovery code is good once");
    let wrong = json!({ "email": "mfa@example.com", "password": "wrong password", "code": recovery[1] });
    assert_eq!(client.error_code(LOG_IN, wrong).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn keys_rotate_without_invalidating_issued_tokens() {
    let h = harness().await;
    let account = sign_up(&h, "rotation@example.com").await;
    let before = jsonwebtoken::decode_header(&account.access).expect("header").kid.expect("kid");
    assert_eq!(jwks(&h).await["keys"].as_array().map(Vec::len), Some(2), "current and next");
    pyairtable_auth::rotate_keys(&h.kit).await.expect("rotate");
    // A process that starts now (no cache) publishes previous, current and next.
    let fresh = pyairtable_auth::SigningKeys::new(h.kit.db.clone(), pyairtable_auth::ROTATE_KEYS_AFTER);
    let published = fresh.jwks().await.expect("jwks");
    let kids: Vec<&str> =
        published["keys"].as_array().expect("keys").iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids.len(), 3, "{kids:?}");
    assert!(kids.contains(&before.as_str()), "the old signing key stays published: {kids:?}");
    for key in published["keys"].as_array().expect("keys") {
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
        );
        assert!(key.get("d").is_none(), "no private part");
    }
    // The token issued before rotation still verifies against the published keys.
    let key = published["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == before.as_str())
        .expect("old key");
    let key = DecodingKey::from_ed_components(key["x"].as_str().expect("x")).expect("key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["pyairtable-api"]);
    jsonwebtoken::decode::<AccessClaims>(&account.access, &key, &validation).expect("still valid");
    // New tokens are signed with the new current key.
    let claims = AccessClaims { jti: Uuid::now_v7(), ..verify(&h, &account.access).await };
    let token = fresh.sign(&claims).await.expect("sign");
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    assert_ne!(kid, before);
    assert!(kids.contains(&kid.as_str()));
}

#[tokio::test]
async fn a_revocation_reaches_every_auth_process_at_once() {
    let h = harness().await;
    let account = sign_up(&h, "replicas@example.com").await;
    // A second auth process on the same database (another replica), with its own cache.
    let other = pyairtable_auth::subgraph(&h.kit).authority.expect("the auth subgraph is an authority");
    assert!(other.session_live(account.session).await.expect("answer"), "live, and now cached there");
    signed_in(&h, &account).data("mutation { logOut }", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while other.session_live(account.session).await.expect("answer") {
        assert!(Instant::now() < deadline, "the other process still trusts a revoked session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_address_cannot_spray_guesses_across_accounts() {
    let h = harness().await;
    let sprayer = h.client(&Caller { ip: Some("198.51.100.250".into()), ..Caller::anonymous() });
    let mut codes = Vec::new();
    for i in 0..32 {
        let (_, body) = sprayer
            .send(LOG_IN, json!({ "email": format!("victim{i}@example.com"), "password": "Summer2024!" }))
            .await;
        codes.push(body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned());
    }
    assert!(codes[..30].iter().all(|c| c == "UNAUTHENTICATED"), "{codes:?}");
    assert!(
        codes[30..].iter().all(|c| c == "RATE_LIMITED"),
        "the 31st guess from one address waits: {codes:?}"
    );
    // Another address is not affected.
    let (_, body) =
        anonymous(&h).send(LOG_IN, json!({ "email": "victim0@example.com", "password": "x" })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_hash_with_weaker_parameters_is_upgraded_at_sign_in() {
    let h = harness().await;
    let account = sign_up(&h, "legacy@example.com").await;
    // A hash from before the parameters rose: argon2id with m = 4 MiB, t = 1, same password.
    let params = argon2::Params::new(4096, 1, 1, None).expect("params");
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = argon2::password_hash::SaltString::encode_b64(b"saltsaltsaltsalt").expect("salt");
    let weak =
        argon2::PasswordHasher::hash_password(&hasher, PASSWORD.as_bytes(), &salt).expect("hash").to_string();
    sqlx::query("update auth.credentials set password_hash = $2 where user_id = $1")
        .bind(account.id)
        .bind(&weak)
        .execute(&h.kit.db)
        .await
        .expect("downgrade");
    anonymous(&h).data(LOG_IN, json!({ "email": "legacy@example.com", "password": PASSWORD })).await;
    let stored: String = sqlx::query_scalar("select password_hash from auth.credentials where user_id = $1")
        .bind(account.id)
        .fetch_one(&h.kit.db)
        .await
        .expect("hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "upgraded: {stored}");
}

#[tokio::test]
async fn a_session_acts_in_a_tenant_it_belongs_to() {
    let h = harness().await;
    let account = sign_up(&h, "tenant@example.com").await;
    let (mine, theirs) = (Uuid::now_v7(), Uuid::now_v7());
    let publish = |topic: &'static str, tenant: Uuid| {
        let db = h.kit.db.clone();
        let user = account.id;
        async move {
            let mut tx = db.begin().await.expect("begin");
            let payload = json!({ "organization_id": tenant, "user_id": user, "role": "member" });
            pyairtable_kit::events::publish(&mut tx, topic, &payload).await.expect("publish");
            tx.commit().await.expect("commit");
        }
    };
    // What the tenants subgraph publishes when the user joins an organization.
    publish("member.joined", mine).await;
    let select = "mutation($o: ID!) { selectTenant(organizationId: $o) { accessToken expiresIn } }";
    let me = signed_in(&h, &account);
    let token = me.data(select, json!({ "o": mine })).await["selectTenant"]["accessToken"].clone();
    assert_eq!(verify(&h, token.as_str().expect("token")).await.tid, Some(mine));
    assert_eq!(me.error_code(select, json!({ "o": theirs })).await, "FORBIDDEN", "not a member");
    let by_key = h.client(&Caller { user_id: Some(account.id), ..Caller::default() });
    assert_eq!(
        by_key.error_code(select, json!({ "o": mine })).await,
        "FORBIDDEN",
        "API keys have no session"
    );

    // Refreshing keeps the tenant; leaving the organization drops it.
    let refreshed =
        anonymous(&h).data(REFRESH, json!({ "token": account.refresh })).await["refreshSession"].clone();
    assert_eq!(verify(&h, refreshed["accessToken"].as_str().expect("token")).await.tid, Some(mine));
    publish("member.removed", mine).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refresh = refreshed["refreshToken"].as_str().expect("token").to_owned();
    loop {
        let next = anonymous(&h).data(REFRESH, json!({ "token": refresh })).await["refreshSession"].clone();
        refresh = next["refreshToken"].as_str().expect("token").to_owned();
        if verify(&h, next["accessToken"].as_str().expect("token")).await.tid.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the removed membership still gives a tid");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(me.error_code(select, json!({ "o": mine })).await, "FORBIDDEN");
}
