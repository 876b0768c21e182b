//! The real `klang run --remote` binary on a private headless PipeWire session (as the
//! session's user): it names the page's address (and, without a terminal, says how to
//! pair instead of printing a code into a log), `klang ctl remote pair` gives a code, a
//! plain HTTP client pairs and turns the volume, and only the token's hash is saved.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use klang_pwtest::PwSession;

mod common;
use common::{KlangRun, ctl_ok};

fn http(addr: SocketAddr, req: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |x| x.1)
        .to_string();
    (answer[9..12].parse().unwrap(), body)
}

fn post(addr: SocketAddr, path: &str, auth: &str, body: &str) -> (u16, String) {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn e2e_klang_run_remote_pairs_and_turns_the_volume() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates a test user for PipeWire: run it as root (as CI does)"
    );
    let pw = PwSession::start_as_test_user().expect("a private PipeWire session");
    pw.null_sink("speakers").unwrap();
    let dir: PathBuf = pw.runtime_dir().to_owned();
    let config = dir.join("remote.toml");
    std::fs::write(
        &config,
        "[volume]\nmax_db = -6.0\n[output]\nmains = \"speakers\"\n\
         [remote]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let run = KlangRun::start(&pw, &["--remote", "--config", c], &["--config", c], |r| {
        r.ok
    });
    let pair = ctl_ok(&pw, &["--config", c, "remote", "pair"]);
    let text = run.log();
    assert!(pair.ok, "{}", pair.message);
    let remote = pair.remote.unwrap();
    assert!(
        text.contains(&format!("klang: remote: {}", remote.url)),
        "{text}"
    );
    assert!(
        text.contains("pair a phone with `klang ctl remote pair`"),
        "{text}"
    );
    let code = remote.code.unwrap();
    assert!(!text.contains(&code), "no code in the log");
    let addr: SocketAddr = remote.url[7..].trim_end_matches('/').parse().unwrap();

    let (st, page) = http(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(st, 200);
    assert!(page.contains("klang remote"), "{page}");

    let (st, body) = post(addr, "/api/pair", "", &format!(r#"{{"code":"{code}"}}"#));
    assert_eq!(st, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let (st, body) = post(
        addr,
        "/api/command",
        &format!("Authorization: Bearer {token}\r\n"),
        &format!(
            r#"{{"nonce":"5eed5eed5eed5eed","ts":{now},"command":{{"cmd":"volume","db":-9}}}}"#
        ),
    );
    assert_eq!(st, 200, "{body}");
    let status = ctl_ok(&pw, &["--config", c, "status"]).status.unwrap();
    assert_eq!(status.volume_db, -9.0);

    // Paired for good: saved beside the state, readable by the user only, hash only.
    let devices = dir.join("state/klang/remote-devices.toml");
    let saved = std::fs::read_to_string(&devices).unwrap();
    assert!(!saved.contains(&token), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&devices).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
