//! The HTTP side: a current-thread tokio runtime on its own thread serves the page, the
//! pairing endpoint, the state stream (SSE) and the command endpoint. Commands do not
//! touch the engine here: they are queued to the engine's own loop ([`Remote::next`]),
//! which carries them out through the same controller path as `klang ctl` and answers.
//!
//! | route               | needs                        | does                         |
//! |---------------------|------------------------------|------------------------------|
//! | `GET /`, `/app.*`   | a known `Host`               | the page                     |
//! | `POST /api/pair`    | `Host`, same `Origin`, code  | a token for a new device     |
//! | `GET /api/events`   | `Host`, `Origin`, token      | SSE: the state on each change|
//! | `GET /api/state`    | `Host`, `Origin`, token      | the state once               |
//! | `POST /api/command` | all that, plus nonce and time| one [`Command`]              |

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{oneshot, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

use crate::api::{Command, Outcome, PageState, Signed};
use crate::guard::{self, Refusal, ReplayGuard};
use crate::pairing::{Device, PairError, Pairing, random_hex, random_u32};

const INDEX: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

/// How long a command waits for the engine's answer.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The strictest policy the page works with: its own script and style files, requests
/// only to itself, no frames, no forms, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Host names besides IP literals and `localhost` that may address the server.
    pub hosts: Vec<String>,
    /// The address phones open, for the QR code; default from `listen`.
    pub url: Option<String>,
    /// The paired-devices file (none: pairings last until klang stops).
    pub devices_file: Option<std::path::PathBuf>,
}

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr} for the remote: {source} (help: another program uses the port? set [remote] listen)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The devices file is unreadable.
    #[error("{0}")]
    Devices(#[from] crate::pairing::DevicesError),
    /// The runtime or thread could not start.
    #[error("cannot start the remote's server: {0}")]
    Start(std::io::Error),
}

/// A command from a page, waiting for the engine.
#[derive(Debug)]
pub struct Pending {
    /// What the page asks for (shape-checked; [`Command::validate`] is the engine's job,
    /// against its current limits).
    pub command: Command,
    reply: oneshot::Sender<Outcome>,
}

impl Pending {
    /// Sends the engine's answer back to the page.
    pub fn answer(self, outcome: Outcome) {
        let _ = self.reply.send(outcome);
    }
}

#[derive(Debug)]
struct Shared {
    pairing: Mutex<Pairing>,
    replay: Mutex<ReplayGuard>,
    state: watch::Sender<Arc<PageState>>,
    commands: mpsc::SyncSender<Pending>,
    hosts: Vec<String>,
}

impl Shared {
    fn pairing(&self) -> std::sync::MutexGuard<'_, Pairing> {
        // A panic while holding the lock leaves plain data that is still consistent.
        self.pairing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine's handle on the remote. Dropping it stops the server.
#[derive(Debug)]
pub struct Remote {
    shared: Arc<Shared>,
    // In a mutex only so that the handle is `Sync`; the engine's loop is its one reader.
    commands: Mutex<mpsc::Receiver<Pending>>,
    url: String,
    addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Remote {
    /// The remote without a socket, and its router (for in-process tests and for
    /// [`Remote::start`]).
    pub fn new(config: &ServerConfig) -> Result<(Remote, Router), RemoteError> {
        let pairing = match &config.devices_file {
            Some(f) => Pairing::load(f)?,
            None => Pairing::in_memory(),
        };
        // A short queue: the engine's loop drains it every few ms; a full queue means the
        // engine is stuck, and the page is told so at once.
        let (tx, rx) = mpsc::sync_channel(16);
        let (state, _) = watch::channel(Arc::new(PageState::default()));
        let shared = Arc::new(Shared {
            pairing: Mutex::new(pairing),
            replay: Mutex::new(ReplayGuard::default()),
            state,
            commands: tx,
            hosts: config.hosts.clone(),
        });
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}/", config.listen));
        let router = router(shared.clone());
        Ok((
            Remote {
                shared,
                commands: Mutex::new(rx),
                url,
                addr: None,
                stop: None,
                thread: None,
            },
            router,
        ))
    }

    /// Binds `config.listen` (errors here, before klang reports itself running) and
    /// serves on a thread of its own.
    pub fn start(config: &ServerConfig) -> Result<Remote, RemoteError> {
        let (mut remote, router) = Remote::new(config)?;
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| RemoteError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(RemoteError::Start)?;
        listener.set_nonblocking(true).map_err(RemoteError::Start)?;
        if config.url.is_none() {
            remote.url = format!("http://{addr}/");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RemoteError::Start)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("klang-remote".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("klang: warning: the remote cannot serve: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        r = axum::serve(listener, router) => {
                            if let Err(e) = r {
                                eprintln!("klang: warning: the remote stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here ends every open stream.
            })
            .map_err(RemoteError::Start)?;
        remote.addr = Some(addr);
        remote.stop = Some(stop);
        remote.thread = Some(thread);
        Ok(remote)
    }

    /// The page's address (`http://HOST:PORT/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address (after [`Remote::start`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The next command a page sent, if any (never blocks).
    pub fn next(&self) -> Option<Pending> {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_recv()
            .ok()
    }

    /// Pushes `state` to every open page if it differs from the last one.
    pub fn publish(&self, state: PageState) {
        self.shared.state.send_if_modified(|old| {
            let mut new = state;
            new.version = old.version;
            if **old == new {
                return false;
            }
            new.version += 1;
            *old = Arc::new(new);
            true
        });
    }

    /// A new pairing code (the old one stops working) and its lifetime in seconds.
    pub fn new_code(&self) -> (String, u64) {
        let mut p = self.shared.pairing();
        let now = now_ms();
        let code = p.new_code(now, &mut random_u32);
        (code, p.code_left_s(now).unwrap_or(0))
    }

    /// The paired devices.
    pub fn devices(&self) -> Vec<Device> {
        self.shared.pairing().devices().to_vec()
    }

    /// Revokes a device (or all); its open pages stop getting updates at once.
    pub fn revoke(&self, id: Option<&str>) -> Result<usize, crate::pairing::DevicesError> {
        let n = {
            let mut p = self.shared.pairing();
            let n = p.revoke(id);
            if n > 0 {
                p.save()?;
            }
            n
        };
        // Wakes every stream, which then checks its token again.
        self.shared.state.send_modify(|_| {});
        Ok(n)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/pair", post(pair))
        .route("/api/events", get(events))
        .route("/api/state", get(state))
        .route("/api/command", post(command))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn_with_state(shared.clone(), check_host))
        .with_state(shared)
}

fn page(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `{"error": "..."}` with a status.
fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({ "error": message.to_string() })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refusal(r: Refusal) -> Response {
    let status = match r {
        Refusal::Host(_) | Refusal::Origin(_) => StatusCode::FORBIDDEN,
        Refusal::NoToken | Refusal::BadToken => StatusCode::UNAUTHORIZED,
        Refusal::Replay | Refusal::Stale => StatusCode::CONFLICT,
        Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
    };
    error(status, r)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn host(h: &HeaderMap) -> &str {
    header_str(h, header::HOST).unwrap_or("")
}

/// Every route: the `Host` must name this machine (DNS rebinding defence).
async fn check_host(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let h = host(req.headers());
    if !guard::host_allowed(h, &s.hosts) {
        return refusal(Refusal::Host(h.into()));
    }
    next.run(req).await
}

/// Origin and token; returns the device id.
fn authorize(s: &Shared, h: &HeaderMap, change: bool) -> Result<String, Refusal> {
    guard::origin_ok(header_str(h, header::ORIGIN), host(h), change)?;
    let token = guard::bearer(header_str(h, header::AUTHORIZATION))?;
    s.pairing()
        .check(token)
        .map(|d| d.id.clone())
        .ok_or(Refusal::BadToken)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairBody {
    code: String,
}

async fn pair(State(s): State<Arc<Shared>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = guard::origin_ok(header_str(&h, header::ORIGIN), host(&h), true) {
        return refusal(r);
    }
    let Ok(b) = serde_json::from_slice::<PairBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "send {\"code\": \"123456\"}");
    };
    let name = header_str(&h, header::USER_AGENT).unwrap_or("browser");
    let mut p = s.pairing();
    match p.pair(&b.code, name, now_ms(), random_hex(32), random_hex(4)) {
        Ok(paired) => {
            if let Err(e) = p.save() {
                eprintln!("klang: warning: paired devices not saved: {e}");
            }
            eprintln!("klang: remote: device {} paired", paired.id);
            let mut r = axum::Json(serde_json::json!({ "token": paired.token, "id": paired.id }))
                .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e @ PairError::Full) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::UNAUTHORIZED, e),
    }
}

/// The state as the page gets it, with the server's clock for the replay guard.
fn state_json(state: &PageState) -> String {
    serde_json::json!({ "now_ms": now_ms(), "state": state }).to_string()
}

async fn state(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &h, false) {
        return refusal(r);
    }
    let body = state_json(&s.state.borrow());
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn events(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &h, false) {
        return refusal(r);
    }
    let token = guard::bearer(header_str(&h, header::AUTHORIZATION))
        .expect("authorized")
        .to_owned();
    let shared = s.clone();
    let stream = WatchStream::new(s.state.subscribe())
        // A revoked token's stream ends at the next wake-up (revoke wakes them all).
        .take_while(move |_| shared.pairing().check(&token).is_some())
        .map(|state| {
            Ok::<_, std::convert::Infallible>(
                Event::default().event("state").data(state_json(&state)),
            )
        });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn command(State(s): State<Arc<Shared>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&s, &h, true) {
        return refusal(r);
    }
    let signed: Signed = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad command: {e}")),
    };
    let accepted = s.replay.lock().unwrap_or_else(|e| e.into_inner()).accept(
        &signed.nonce,
        signed.ts,
        now_ms(),
    );
    if let Err(r) = accepted {
        return refusal(r);
    }
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        command: signed.command,
        reply,
    };
    if s.commands.try_send(pending).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is busy or stopped; try again",
        );
    }
    match tokio::time::timeout(ENGINE_TIMEOUT, answer).await {
        Ok(Ok(o)) if o.ok => axum::Json(o).into_response(),
        Ok(Ok(o)) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(o)).into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer; try again",
        ),
    }
}
