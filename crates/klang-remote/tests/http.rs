//! The router in-process (no socket): who gets in and who does not, replay, the engine's
//! answers, and pushed state. A small task plays the engine: it carries out commands
//! against [`Limits`] like klang-engine does and publishes the new state.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use klang_remote::api::{Command, Limits, Outcome, PageState};
use klang_remote::server::now_ms;
use klang_remote::{Remote, ServerConfig};
use tower::ServiceExt;

const HOST: &str = "192.168.1.10:7878";
const ORIGIN: &str = "http://192.168.1.10:7878";

fn config() -> ServerConfig {
    ServerConfig {
        listen: HOST.parse().unwrap(),
        hosts: vec!["klang.home".into()],
        url: None,
        devices_file: None,
    }
}

fn initial() -> PageState {
    PageState {
        volume_db: -20.0,
        max_db: -6.0,
        preset: "flat".into(),
        presets: vec!["flat".into(), "wall".into()],
        ..PageState::default()
    }
}

/// The fake engine: validates like klang-engine and publishes each change.
fn spawn_engine(remote: Arc<Remote>) {
    tokio::spawn(async move {
        let mut s = initial();
        remote.publish(s.clone());
        loop {
            while let Some(p) = remote.next() {
                let limits = Limits {
                    max_db: s.max_db,
                    presets: s.presets.clone(),
                };
                let outcome = match p.command.validate(&limits) {
                    Err(message) => Outcome { ok: false, message },
                    Ok(()) => {
                        match &p.command {
                            Command::Volume { db } => s.volume_db = *db,
                            Command::Bass { db } => s.bass_db = *db,
                            Command::Mute { on } => s.muted = *on,
                            _ => {}
                        }
                        remote.publish(s.clone());
                        Outcome {
                            ok: true,
                            message: format!("{:?}", p.command),
                        }
                    }
                };
                p.answer(outcome);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

struct Setup {
    remote: Arc<Remote>,
    router: Router,
}

fn setup() -> Setup {
    let (remote, router) = Remote::new(&config()).unwrap();
    let remote = Arc::new(remote);
    spawn_engine(remote.clone());
    Setup { remote, router }
}

async fn call(router: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn post(path: &str, origin: Option<&str>, token: Option<&str>, body: String) -> Request<Body> {
    let mut b = Request::post(path)
        .header("host", HOST)
        .header("content-type", "application/json");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body)).unwrap()
}

fn signed(nonce: &str, command: &str) -> String {
    format!(
        r#"{{"nonce":"{nonce}","ts":{},"command":{command}}}"#,
        now_ms()
    )
}

/// `POST /api/command` of `cmd` with a fresh timestamp.
async fn command(
    router: &Router,
    origin: Option<&str>,
    token: Option<&str>,
    nonce: &str,
    cmd: &str,
) -> (StatusCode, serde_json::Value) {
    call(
        router,
        post("/api/command", origin, token, signed(nonce, cmd)),
    )
    .await
}

async fn paired(s: &Setup) -> String {
    let (code, _) = s.remote.new_code();
    let (status, j) = call(
        &s.router,
        post(
            "/api/pair",
            Some(ORIGIN),
            None,
            format!(r#"{{"code":"{code}"}}"#),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{j}");
    j["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy() {
    let s = setup();
    let r = s
        .router
        .clone()
        .oneshot(
            Request::get("/")
                .header("host", HOST)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        html.contains("/app.js") && !html.contains("https://"),
        "no CDN"
    );
}

#[tokio::test]
async fn a_rebound_host_is_refused_everywhere() {
    let s = setup();
    for path in ["/", "/api/state"] {
        let r = s
            .router
            .clone()
            .oneshot(
                Request::get(path)
                    .header("host", "evil.example:7878")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn pairing_needs_the_code_and_the_page_origin() {
    let s = setup();
    let (code, valid) = s.remote.new_code();
    assert_eq!(valid, 600);
    let body = format!(r#"{{"code":"{code}"}}"#);
    let (st, _) = call(
        &s.router,
        post("/api/pair", Some("http://evil.example"), None, body.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "foreign origin");
    let (st, j) = call(
        &s.router,
        post(
            "/api/pair",
            Some(ORIGIN),
            None,
            r#"{"code":"000000x"}"#.into(),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(j["error"].as_str().unwrap().contains("4 tries left"), "{j}");
    let (st, j) = call(
        &s.router,
        post("/api/pair", Some(ORIGIN), None, body.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{j}");
    assert_eq!(j["token"].as_str().unwrap().len(), 64);
    assert_eq!(s.remote.devices().len(), 1);
    let (st, _) = call(&s.router, post("/api/pair", Some(ORIGIN), None, body)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a code pairs once");
}

#[tokio::test]
async fn commands_are_refused_without_token_wrong_token_wrong_origin_or_replayed() {
    let s = setup();
    let token = paired(&s).await;
    let cmd = r#"{"cmd":"volume","db":-12}"#;
    let (st, j) = command(&s.router, Some(ORIGIN), None, "aaaaaaaaaaaaaaaa", cmd).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "no token: {j}");
    let (st, _) = command(
        &s.router,
        Some(ORIGIN),
        Some(&"0".repeat(64)),
        "aaaaaaaaaaaaaaab",
        cmd,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "wrong token");
    for origin in [Some("http://evil.example"), None] {
        let (st, _) = command(&s.router, origin, Some(&token), "aaaaaaaaaaaaaaac", cmd).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    let body = signed("00112233445566778899aabbccddeeff", cmd);
    let replay = || post("/api/command", Some(ORIGIN), Some(&token), body.clone());
    let (st, j) = call(&s.router, replay()).await;
    assert_eq!(st, StatusCode::OK, "{j}");
    let (st, j) = call(&s.router, replay()).await;
    assert_eq!(st, StatusCode::CONFLICT, "replayed: {j}");
    let stale = format!(
        r#"{{"nonce":"abababababababab","ts":{},"command":{cmd}}}"#,
        now_ms() - 120_000
    );
    let (st, _) = call(
        &s.router,
        post("/api/command", Some(ORIGIN), Some(&token), stale),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "stale");
    // Only the one good request landed.
    let (st, j) = call(
        &s.router,
        Request::get("/api/state")
            .header("host", HOST)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(j["state"]["volume_db"], -12.0);
}

#[tokio::test]
async fn volume_above_the_maximum_and_unknown_presets_are_refused() {
    let s = setup();
    let token = paired(&s).await;
    for (i, cmd) in [
        r#"{"cmd":"volume","db":0}"#,
        r#"{"cmd":"preset","name":"/etc/passwd"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let nonce = format!("cafe{i:012x}");
        let (st, j) = command(&s.router, Some(ORIGIN), Some(&token), &nonce, cmd).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{cmd}: {j}");
        assert_eq!(j["ok"], false);
    }
    let (st, j) = command(
        &s.router,
        Some(ORIGIN),
        Some(&token),
        "beefbeefbeefbeef",
        r#"{"cmd":"reload","file":"/x"}"#,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "not in the page's vocabulary: {j}"
    );
}

/// Reads SSE frames until one carries a state matching `want`.
async fn next_state(
    body: &mut Body,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut buf = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a pushed state within 5 s")
            .expect("the stream is open")
            .unwrap();
        if let Some(data) = frame.data_ref() {
            buf.push_str(std::str::from_utf8(data).unwrap());
        }
        while let Some(i) = buf.find("\n\n") {
            let event: String = buf.drain(..i + 2).collect();
            if let Some(line) = event.lines().find(|l| l.starts_with("data:")) {
                let j: serde_json::Value = serde_json::from_str(line[5..].trim()).unwrap();
                if want(&j["state"]) {
                    return j["state"].clone();
                }
            }
        }
    }
}

#[tokio::test]
async fn every_page_gets_each_change_pushed_and_revocation_ends_the_stream() {
    let s = setup();
    let token = paired(&s).await;
    let open = || {
        Request::get("/api/events")
            .header("host", HOST)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let mut a = s.router.clone().oneshot(open()).await.unwrap().into_body();
    let mut b = s.router.clone().oneshot(open()).await.unwrap().into_body();
    next_state(&mut a, |st| st["volume_db"] == -20.0).await;
    next_state(&mut b, |st| st["volume_db"] == -20.0).await;
    let (st, _) = command(
        &s.router,
        Some(ORIGIN),
        Some(&token),
        "1234123412341234",
        r#"{"cmd":"bass","db":4.5}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    next_state(&mut a, |st| st["bass_db"] == 4.5).await;
    next_state(&mut b, |st| st["bass_db"] == 4.5).await;

    let id = s.remote.devices()[0].id.clone();
    assert_eq!(s.remote.revoke(Some(&id)).unwrap(), 1);
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = a.frame().await {
            f.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the revoked device's stream ends");
    let (st, _) = command(
        &s.router,
        Some(ORIGIN),
        Some(&token),
        "4321432143214321",
        r#"{"cmd":"mute","on":true}"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "revoked");
}

#[test]
fn the_server_binds_and_serves_on_a_real_socket() {
    use std::io::{Read, Write};
    let remote = Remote::start(&ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config()
    })
    .unwrap();
    let addr = remote.local_addr().unwrap();
    assert_eq!(remote.url(), format!("http://{addr}/"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /api/state HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // A second server on the same port fails with a clear error, at start.
    let e = Remote::start(&ServerConfig {
        listen: addr,
        ..config()
    })
    .unwrap_err();
    assert!(e.to_string().contains("cannot listen on"), "{e}");
    drop(remote);
}
