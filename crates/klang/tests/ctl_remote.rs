//! `klang ctl remote` against a stand-in engine on the control socket (one request, one
//! canned answer), and `klang run`'s refusal of a LAN address without `allow_lan`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::Output;

use klang_engine::protocol::{RemoteDevice, RemoteReport, Request, Response};

mod common;
use common::klang_in as klang;

/// Runs `klang ctl --socket S ARGS` while a thread answers one request with `answer`;
/// returns the request it saw and ctl's output.
fn ctl_against(args: &[&str], answer: Response) -> (Request, Output) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let engine = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        let mut text = serde_json::to_string(&answer).unwrap();
        text.push('\n');
        (&stream).write_all(text.as_bytes()).unwrap();
        serde_json::from_str::<Request>(&line).unwrap()
    });
    let mut a = vec!["ctl", "--socket", socket.to_str().unwrap()];
    a.extend_from_slice(args);
    let out = klang(&a, dir.path());
    (engine.join().unwrap(), out)
}

fn answer(message: &str, remote: Option<RemoteReport>) -> Response {
    Response {
        ok: true,
        message: message.into(),
        status: None,
        remote,
    }
}

#[test]
fn pair_prints_the_code_and_a_qr_code_of_the_address() {
    let report = RemoteReport {
        url: "http://192.168.1.10:7878/".into(),
        code: Some("042917".into()),
        code_valid_s: 600,
        devices: Vec::new(),
    };
    let (req, out) = ctl_against(&["remote", "pair"], answer("pairing code", Some(report)));
    assert_eq!(req, Request::RemotePair);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("type the code 042917"), "{text}");
    assert!(text.contains("http://192.168.1.10:7878/"), "{text}");
    assert!(
        text.contains('▀') && text.contains('█'),
        "a QR code: {text}"
    );
}

#[test]
fn devices_and_revoke() {
    let report = RemoteReport {
        url: "http://127.0.0.1:7878/".into(),
        code: None,
        code_valid_s: 0,
        devices: vec![RemoteDevice {
            id: "1a2b3c4d".into(),
            name: "Mozilla/5.0 (Linux; Android 6.0)".into(),
            paired_at: 1_700_000_000,
        }],
    };
    let (req, out) = ctl_against(
        &["remote", "devices"],
        answer("1 device(s) paired", Some(report)),
    );
    assert_eq!(req, Request::RemoteDevices);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1a2b3c4d") && text.contains("Android 6.0"),
        "{text}"
    );

    let (req, _) = ctl_against(&["remote", "revoke", "1a2b3c4d"], answer("revoked", None));
    assert_eq!(
        req,
        Request::RemoteRevoke {
            id: Some("1a2b3c4d".into())
        }
    );
    let (req, _) = ctl_against(&["remote", "revoke", "--all"], answer("revoked", None));
    assert_eq!(req, Request::RemoteRevoke { id: None });

    let dir = tempfile::tempdir().unwrap();
    let out = klang(&["ctl", "remote", "revoke"], dir.path());
    assert_eq!(out.status.code(), Some(2), "an id or --all is required");
}

#[test]
fn the_lan_needs_allow_lan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lan.toml");
    std::fs::write(
        &path,
        "[remote]\nenabled = true\nlisten = \"0.0.0.0:7878\"\n",
    )
    .unwrap();
    let out = klang(
        &["run", "--remote", "--config", path.to_str().unwrap()],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for want in ["lan.toml", "line 3", "remote.listen", "allow_lan = true"] {
        assert!(err.contains(want), "{want:?} missing in {err}");
    }
}
