//! The phone remote end to end: the engine (`klang run`'s loop, in-process) on a private
//! headless PipeWire session, its page in a real headless Chromium driven over WebDriver
//! (chromedriver). A phone-sized page pairs with the code from `klang ctl remote pair`,
//! moves the volume and bass; the engine's state (control socket) and the recorded level
//! change; a second page follows without reloading, also when the change comes from the
//! control socket; requests without token, with a wrong token, from another origin,
//! replayed, or above the maximum volume are refused; a revoked page falls back to
//! pairing, pairs again by typed code, and switches to a preset whose lower maximum caps
//! the volume. A screenshot is kept in `target/test-artifacts/klang-remote/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use klang_engine::protocol::{self, Request, Response, StatusReport};
use klang_engine::run::{RunOptions, run};
use klang_pwtest::{PwSession, Recording, Tone, analysis};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const RATE: u32 = 48_000;
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "flat" => Some(""),
        "quiet" => Some("[volume]\nmax_db = -12.0\n"),
        _ => None,
    }
}

/// The engine loop on a thread, stopped and joined when dropped.
struct Engine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    socket: PathBuf,
}

impl Engine {
    fn start(pw: &PwSession, dir: &Path) -> Engine {
        let socket = dir.join("control.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[volume]\ndefault_db = -20.0\nmax_db = -6.0\nramp_ms = 50\n\n\
                 [output]\nmains = \"speakers\"\nremote = \"{}\"\n\n\
                 [control]\nsocket = \"{}\"\n\n\
                 [remote]\nlisten = \"127.0.0.1:0\"\n",
                pw.socket().display(),
                socket.display()
            ),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut opts = RunOptions::new(Some(config), builtin, vec!["flat".into(), "quiet".into()]);
        opts.remote = true;
        opts.state_path = Some(dir.join("state/state.toml"));
        opts.stop = Some(stop.clone());
        let thread = std::thread::spawn(move || run(opts).map_err(|e| e.to_string()));
        let mut e = Engine {
            stop,
            thread: Some(thread),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if e.thread.as_ref().unwrap().is_finished() {
                let r = e.thread.take().unwrap().join().unwrap();
                panic!("the engine stopped: {r:?}\n{}", pw.logs());
            }
            if let Ok(r) = protocol::request(&e.socket, &Request::Status)
                && let Some(s) = r.status
                && s.mains == "connected"
                && s.sample_rate == RATE
            {
                return e;
            }
            assert!(Instant::now() < deadline, "engine not ready\n{}", pw.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ask(&self, req: Request) -> Response {
        protocol::request(&self.socket, &req).expect("the control socket answers")
    }

    fn status(&self) -> StatusReport {
        self.ask(Request::Status).status.unwrap()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// chromedriver (and the Chromium it starts) in a process group of their own, ended by
/// that group's id when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing (help: apt-get install chromium chromium-driver, the \
                 `browser` layer of scripts/deps.sh)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let d = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = Pid::from_raw(-(self.child.id() as i32));
        let _ = kill(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = kill(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
            // A phone's viewport: 390 x 844 CSS pixels.
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": false }
            }
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port)),
    )
    .await
    .expect("a browser session within 30 s")
    .expect("a browser session")
}

/// Evaluates `expr` in the page until it is true (10 s at most).
async fn wait_js(c: &Client, what: &str, expr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c
            .execute(&format!("return !!({expr});"), vec![])
            .await
            .unwrap();
        if v == Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let page = c
                .execute(
                    "return document.getElementById('msg').textContent + ' | ' + document.body.innerText.slice(0, 400);",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("{what}: `{expr}` not true within 10 s; page says {page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits for the engine's state to satisfy `ok`.
fn wait_state(engine: &Engine, what: &str, ok: impl Fn(&StatusReport) -> bool) -> StatusReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = engine.status();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: engine state {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw HTTP/1.1 `POST /api/command` to the live server, from `origin`, with the
/// `Authorization` header `auth` if any; returns status and body.
fn post_command(addr: SocketAddr, origin: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let req = format!(
        "POST /api/command HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Origin: {origin}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn command(db: f64, nonce: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(r#"{{"nonce":"{nonce}","ts":{now},"command":{{"cmd":"volume","db":{db}}}}}"#)
}

/// Levels (dBFS) of the 1 kHz and 50 Hz parts of a tone played through klang.
fn levels(pw: &PwSession, tone: &Path) -> (f64, f64) {
    let rec = pw.record("speakers", 2.5, RATE, 2).unwrap();
    pw.play(tone, Some("klang"), &[]).unwrap().wait().unwrap();
    let rec: Recording = rec.finish().unwrap();
    let x = rec.channel(0);
    let range = analysis::active_range(&x, RATE);
    assert!(
        range.len() > RATE as usize / 2,
        "no steady signal: {range:?}"
    );
    let x = &x[range];
    (
        analysis::db(analysis::tone_amplitude_median(x, RATE, 1000.0)),
        analysis::db(analysis::tone_amplitude_median(x, RATE, 50.0)),
    )
}

fn artifacts() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/klang-remote");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "current_thread")]
async fn e2e_remote_page_in_chromium_drives_the_engine() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates a test user for PipeWire: run it as root (as CI does)"
    );
    let pw = PwSession::start_as_test_user().expect("a private PipeWire session");
    pw.null_sink("speakers").expect("the speakers sink");
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&pw, dir.path());
    let tone = pw
        .write_tone(
            "tone.wav",
            &Tone::new(RATE, 1.5).with(1000.0, 0.05).with(50.0, 0.05),
        )
        .unwrap();
    let (k1_before, b50_before) = levels(&pw, &tone);

    // Pairing: the code klang ctl remote pair shows, carried in the QR code's address.
    let r = engine.ask(Request::RemotePair);
    assert!(r.ok, "{}", r.message);
    let remote = r.remote.unwrap();
    let code = remote.code.unwrap();
    let url = remote.url.clone();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();

    let driver = Driver::start(dir.path());
    let a = browser(&driver, &dir.path().join("profile")).await;
    let outcome = async {
        a.goto(&klang_engine::remote::pairing_url(&url, &code))
            .await
            .unwrap();
        wait_js(&a, "paired", "localStorage.getItem('klang-remote-token')").await;
        wait_js(&a, "state shown", "document.body.dataset.version").await;
        assert!(
            !a.current_url().await.unwrap().as_str().contains("code="),
            "the code leaves the address bar"
        );
        assert_eq!(
            engine
                .ask(Request::RemoteDevices)
                .remote
                .unwrap()
                .devices
                .len(),
            1
        );

        // A second page (same browser, so already paired), never reloaded from here on.
        let first = a.window().await.unwrap();
        let b = a.new_window(true).await.unwrap().handle;
        a.switch_to_window(b.clone()).await.unwrap();
        a.goto(&url).await.unwrap();
        wait_js(
            &a,
            "second page shows the state",
            "document.body.dataset.version",
        )
        .await;
        a.execute("window.notReloaded = true;", vec![])
            .await
            .unwrap();

        // Volume by the slider (as a finger lets go of it), bass by three taps on +.
        a.switch_to_window(first.clone()).await.unwrap();
        a.execute(
            "const v = document.getElementById('volume'); v.value = -10; \
             v.dispatchEvent(new Event('input')); v.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
        wait_state(&engine, "volume from the page", |s| s.volume_db == -10.0);
        for want in ["+1.0 dB", "+2.0 dB", "+3.0 dB"] {
            click(&a, "bass-up").await;
            wait_js(
                &a,
                "bass step",
                &format!("document.getElementById('bass-value').textContent == '{want}'"),
            )
            .await;
        }
        let s = wait_state(&engine, "bass from the page", |s| s.bass_db == 3.0);
        assert_eq!((s.volume_db, s.max_db), (-10.0, -6.0));

        // The second page followed without a reload, and follows klang ctl too.
        a.switch_to_window(b.clone()).await.unwrap();
        wait_js(
            &a,
            "second page volume",
            "document.getElementById('volume-value').textContent == '−10.0 dB'",
        )
        .await;
        assert_eq!(text(&a, "bass-value").await, "+3.0 dB");
        assert!(engine.ask(Request::Volume { db: -14.0 }).ok);
        wait_js(
            &a,
            "second page sees klang ctl",
            "document.getElementById('volume-value').textContent == '−14.0 dB'",
        )
        .await;
        wait_js(&a, "no reload", "window.notReloaded === true").await;

        // Screenshot of the phone-sized page.
        a.switch_to_window(first).await.unwrap();
        wait_js(
            &a,
            "first page sees klang ctl",
            "document.getElementById('volume-value').textContent == '−14.0 dB'",
        )
        .await;
        let png = a.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(artifacts().join("remote-390x844.png"), &png).unwrap();

        // Refusals, against the live server, with the page's own token.
        let token = a
            .execute("return localStorage.getItem('klang-remote-token');", vec![])
            .await
            .unwrap();
        let token = token.as_str().unwrap().to_string();
        let auth = format!("Bearer {token}");
        let origin = format!("http://{addr}");
        let (st, body) = post_command(addr, &origin, None, &command(-12.0, "a000000000000001"));
        assert_eq!(st, 401, "no token: {body}");
        let wrong = format!("Bearer {}", "0".repeat(64));
        let (st, body) = post_command(
            addr,
            &origin,
            Some(&wrong),
            &command(-12.0, "a000000000000002"),
        );
        assert_eq!(st, 401, "wrong token: {body}");
        let (st, body) = post_command(
            addr,
            "http://evil.example",
            Some(&auth),
            &command(-12.0, "a000000000000003"),
        );
        assert_eq!(st, 403, "wrong origin: {body}");
        let (st, body) = post_command(
            addr,
            &origin,
            Some(&auth),
            &command(0.0, "a000000000000004"),
        );
        assert_eq!(st, 422, "above max_db: {body}");
        assert!(body.contains("above the maximum volume"), "{body}");
        let ok = command(-12.0, "a000000000000005");
        let (st, body) = post_command(addr, &origin, Some(&auth), &ok);
        assert_eq!(st, 200, "{body}");
        let (st, body) = post_command(addr, &origin, Some(&auth), &ok);
        assert_eq!(st, 409, "replayed: {body}");
        let s = engine.status();
        assert_eq!(s.volume_db, -12.0, "only the good request landed");

        // The sound, at -10 dB again: 10 dB louder than at the start (-20 dB), and the
        // bass shelf lifts 50 Hz more than 1 kHz.
        assert!(engine.ask(Request::Volume { db: -10.0 }).ok);
        wait_state(&engine, "back to -10", |s| s.current_volume_db > -10.1);
        let (k1_after, b50_after) = levels(&pw, &tone);
        let k1 = k1_after - k1_before;
        let b50 = b50_after - b50_before;
        assert!((k1 - 10.0).abs() < 1.0, "1 kHz rose {k1:.2} dB, want 10");
        assert!(
            b50 - k1 > 1.5,
            "50 Hz rose {b50:.2} dB, 1 kHz {k1:.2} dB: the bass did not change"
        );

        // Revoking the token: the page is unpaired at once.
        let r = engine.ask(Request::RemoteRevoke { id: None });
        assert!(r.ok, "{}", r.message);
        wait_js(
            &a,
            "unpaired after revoke",
            "!document.getElementById('pair-view').hidden",
        )
        .await;
        let (st, _) = post_command(
            addr,
            &origin,
            Some(&auth),
            &command(-12.0, "a000000000000006"),
        );
        assert_eq!(st, 401, "revoked");

        // Pairing again by typing the code, as on a phone without a camera.
        let code = engine
            .ask(Request::RemotePair)
            .remote
            .unwrap()
            .code
            .unwrap();
        let input = a.find(Locator::Id("code")).await.unwrap();
        input.send_keys(&code).await.unwrap();
        click(&a, "pair").await;
        wait_js(
            &a,
            "paired by typing the code",
            "!document.getElementById('main-view').hidden \
             && document.getElementById('volume-value').textContent == '−10.0 dB'",
        )
        .await;
        assert_eq!(
            engine
                .ask(Request::RemoteDevices)
                .remote
                .unwrap()
                .devices
                .len(),
            1
        );

        // A preset from the list: its lower maximum caps the volume, on the page too.
        a.find(Locator::Css("button[data-preset='quiet']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let s = wait_state(&engine, "preset from the page", |s| s.preset == "quiet");
        assert_eq!((s.max_db, s.volume_db), (-12.0, -12.0));
        wait_js(
            &a,
            "the page shows the capped volume",
            "document.getElementById('volume-value').textContent == '−12.0 dB' \
             && document.getElementById('volume').max == '-12'",
        )
        .await;
    };
    // Bounded: the whole browser part gets 90 s.
    let result = tokio::time::timeout(Duration::from_secs(90), outcome).await;
    let _ = a.close().await;
    drop(driver);
    result.expect("the browser part finished within 90 s");
    drop(engine);
}
