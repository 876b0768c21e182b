//! A real Spice console for end-to-end tests: an X server of the test's own (Xvfb with
//! a cookie, so `XAUTHORITY` has to reach the viewer), a diskless QEMU (TCG) with a
//! Spice server inside a [`TestHost`]'s namespace, its QMP socket for `query-spice`, an
//! openssl test CA for TLS, and screenshots (`xwd` → PNG).
//!
//! Everything runs as a [`Spawned`] process group, killed by its id on drop.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Spawned, TestHost, run_ok};

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An Xvfb display `:N` with a MIT-MAGIC-COOKIE-1 cookie in `DIR/Xauthority` (mode
/// 0644, so a test user can use it); killed on drop.
#[derive(Debug)]
pub struct TestDisplay {
    number: u32,
    xauthority: PathBuf,
    _server: Spawned,
}

impl TestDisplay {
    /// Starts Xvfb (1024x768, 24 bits, no TCP) on the first free display from 100 + pid % 500.
    pub fn start(dir: &Path) -> Self {
        let xauthority = dir.join("Xauthority");
        let mut cookie = [0u8; 16];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut cookie))
            .expect("read /dev/urandom");
        let first = 100 + std::process::id() % 500;
        for number in (first..first + 200).filter(|n| display_free(*n)) {
            std::fs::write(&xauthority, xauth_entry(number, &cookie))
                .unwrap_or_else(|e| panic!("write {}: {e}", xauthority.display()));
            std::fs::set_permissions(&xauthority, std::fs::Permissions::from_mode(0o644))
                .expect("chmod Xauthority");
            let log = File::create(dir.join(format!("xvfb-{number}.log"))).expect("Xvfb log");
            let mut cmd = Command::new("Xvfb");
            cmd.arg(format!(":{number}"))
                .args(["-screen", "0", "1024x768x24", "-nolisten", "tcp", "-auth"])
                .arg(&xauthority)
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            let mut server = Spawned::start(cmd);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            // Another server may have taken the number meanwhile: Xvfb exits then.
            let up = wait_until(Duration::from_secs(30), || {
                !server.is_running() || (socket.exists() && xdpyinfo_ok(number, &xauthority))
            });
            if up && server.is_running() {
                return TestDisplay {
                    number,
                    xauthority,
                    _server: server,
                };
            }
        }
        panic!("no Xvfb display could be started (is the xvfb package installed?)");
    }

    /// `:N`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// The cookie file for `XAUTHORITY`.
    pub fn xauthority(&self) -> &Path {
        &self.xauthority
    }

    /// Writes a PNG of the whole screen (`xwd -root | xwdtopnm | pnmtopng`) to `out`.
    pub fn screenshot(&self, out: &Path) {
        let mut xwd = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display()])
            .env("XAUTHORITY", &self.xauthority)
            .stdout(Stdio::piped())
            .spawn()
            .expect("xwd (package x11-apps)");
        let mut topnm = Command::new("xwdtopnm")
            .stdin(xwd.stdout.take().expect("piped"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("xwdtopnm (package netpbm)");
        let png = Command::new("pnmtopng")
            .stdin(topnm.stdout.take().expect("piped"))
            .stderr(Stdio::null())
            .output()
            .expect("pnmtopng (package netpbm)");
        let ok = xwd.wait().is_ok_and(|s| s.success())
            && topnm.wait().is_ok_and(|s| s.success())
            && png.status.success()
            && png.stdout.starts_with(b"\x89PNG");
        assert!(ok, "screenshot of {} failed", self.display());
        std::fs::write(out, &png.stdout).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}

/// Whether neither a lock file nor a socket says display `n` is taken.
fn display_free(n: u32) -> bool {
    !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
}

/// Whether an X client can open the display: `xwd` of a 1-pixel root is the cheapest
/// client in the packages we already need.
fn xdpyinfo_ok(n: u32, xauthority: &Path) -> bool {
    Command::new("xwd")
        .args(["-root", "-silent", "-display", &format!(":{n}")])
        .env("XAUTHORITY", xauthority)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One Xauthority record (Xau format: big-endian lengths) for any host (FamilyWild).
fn xauth_entry(display: u32, cookie: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xffffu16.to_be_bytes());
    let number = display.to_string();
    for field in [
        &b""[..],
        number.as_bytes(),
        b"MIT-MAGIC-COOKIE-1",
        &cookie[..],
    ] {
        let len = u16::try_from(field.len()).expect("short field");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// A throw-away CA and a server certificate signed by it, in the layout QEMU's
/// `x509-dir` expects (`ca-cert.pem`, `server-cert.pem`, `server-key.pem`).
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
    subject: String,
}

impl TestCa {
    /// Creates the CA and a certificate for `O=vmgate test,CN=<cn>` under `dir`.
    pub fn create(dir: &Path, cn: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let p = |f: &str| dir.join(f).display().to_string();
        let openssl = |args: &[&str]| {
            let mut argv = vec!["openssl"];
            argv.extend_from_slice(args);
            run_ok(&argv);
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=vmgate test CA",
            "-keyout",
            &p("ca-key.pem"),
            "-out",
            &p("ca-cert.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/O=vmgate test/CN={cn}"),
            "-keyout",
            &p("server-key.pem"),
            "-out",
            &p("server.csr"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-set_serial",
            "1",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca-cert.pem"),
            "-CAkey",
            &p("ca-key.pem"),
            "-out",
            &p("server-cert.pem"),
        ]);
        TestCa {
            dir: dir.to_owned(),
            subject: format!("O=vmgate test,CN={cn}"),
        }
    }

    /// The directory for QEMU's `x509-dir`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (what the `.vv` file embeds as `ca=`).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca-cert.pem")
    }

    /// The server certificate's subject as `host-subject=` wants it.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// How a [`SpiceServer`] listens.
#[derive(Debug, Clone, Copy)]
pub enum SpiceListen<'a> {
    /// `port=`, no ticket.
    Plain,
    /// `tls-port=` with the CA's server certificate and a password (a QEMU secret
    /// read from a root-only file).
    Tls {
        /// The certificates.
        ca: &'a TestCa,
        /// The Spice password.
        password: &'a str,
    },
}

/// A diskless QEMU (TCG, qxl, SeaBIOS showing "No bootable device") with a Spice
/// server on the host's IPv4 address inside its namespace; killed on drop.
#[derive(Debug)]
pub struct SpiceServer {
    qmp: PathBuf,
    log: PathBuf,
    port: u16,
    qemu: std::sync::Mutex<Spawned>,
}

/// One Spice channel a client has open, from `query-spice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiceChannel {
    /// The client's address.
    pub host: String,
    /// Whether the channel is encrypted.
    pub tls: bool,
    /// Spice channel type (1 = main, 2 = display, 3 = inputs, 4 = cursor).
    pub channel_type: u64,
}

impl SpiceServer {
    /// Starts QEMU in `host`'s namespace, listening on `host.v4():port`, with its QMP
    /// socket and log under `dir`; waits until `query-spice` answers.
    pub fn start(host: &TestHost, port: u16, listen: SpiceListen<'_>, dir: &Path) -> Self {
        let qmp = dir.join(format!("qmp-{port}.sock"));
        let log = dir.join(format!("qemu-{port}.log"));
        let addr = host.v4();
        let mut spice = format!("addr={addr},");
        let mut argv: Vec<String> = [
            "qemu-system-x86_64",
            "-machine",
            "pc,accel=tcg",
            "-nodefaults",
            "-no-user-config",
            "-m",
            "64",
            "-vga",
            "qxl",
            "-display",
            "none",
        ]
        .map(String::from)
        .to_vec();
        match listen {
            SpiceListen::Plain => spice.push_str(&format!("port={port},disable-ticketing=on")),
            SpiceListen::Tls { ca, password } => {
                let secret = dir.join(format!("spice-secret-{port}"));
                std::fs::write(&secret, password).expect("write the Spice secret");
                std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod the Spice secret");
                argv.push("-object".into());
                argv.push(format!("secret,id=spicepw,file={}", secret.display()));
                spice.push_str(&format!(
                    "tls-port={port},x509-dir={},password-secret=spicepw",
                    ca.dir().display()
                ));
            }
        }
        argv.extend([
            "-spice".into(),
            spice,
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp.display()),
        ]);
        let out = File::create(&log).expect("QEMU log");
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut cmd = host.command(&refs);
        cmd.stdout(out.try_clone().expect("log")).stderr(out);
        let mut qemu = Spawned::start(cmd);
        let mut server = None;
        let up = wait_until(Duration::from_secs(60), || {
            if !qemu.is_running() {
                return true;
            }
            server = qmp_query(&qmp, "query-spice").ok();
            server.is_some()
        });
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            up && qemu.is_running() && server.is_some(),
            "QEMU's Spice server did not come up ({}): {log_text}",
            argv.join(" ")
        );
        SpiceServer {
            qmp,
            log,
            port,
            qemu: std::sync::Mutex::new(qemu),
        }
    }

    /// The Spice port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// QEMU's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `query-spice`'s `return` object. QMP serves one client at a time, so a refused
    /// or cut connection is retried for a few seconds before the test fails.
    pub fn query(&self) -> serde_json::Value {
        let mut last = String::new();
        for _ in 0..25 {
            match qmp_query(&self.qmp, "query-spice") {
                Ok(v) => return v,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let state = match self.qemu.lock() {
            Ok(mut q) => match q.child_mut().try_wait() {
                Ok(Some(status)) => format!("QEMU ended: {status}"),
                _ => "QEMU still runs".to_owned(),
            },
            Err(_) => String::new(),
        };
        panic!("query-spice: {last} ({state})\n{}", self.log())
    }

    /// The channels clients have open now.
    pub fn channels(&self) -> Vec<SpiceChannel> {
        self.query()["channels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| SpiceChannel {
                        host: c["host"].as_str().unwrap_or_default().to_owned(),
                        tls: c["tls"].as_bool().unwrap_or(false),
                        channel_type: c["channel-type"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One QMP command on a fresh connection: greeting, `qmp_capabilities`, the command;
/// returns its `return` value.
pub fn qmp_query(socket: &Path, command: &str) -> Result<serde_json::Value, String> {
    let stream = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut read_reply = || -> Result<serde_json::Value, String> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("QMP closed the connection".into());
            }
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
            // Asynchronous events may come in between; the greeting has "QMP".
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
    };
    read_reply()?;
    for cmd in ["qmp_capabilities", command] {
        writeln!(writer, "{{\"execute\":\"{cmd}\"}}").map_err(|e| e.to_string())?;
        let v = read_reply()?;
        if cmd == command {
            return v
                .get("return")
                .cloned()
                .ok_or_else(|| format!("{cmd}: {v}"));
        }
    }
    unreachable!("the loop returns at the last command")
}

/// PIDs of processes whose executable is `exe` (a test's private copy of a program),
/// so stragglers can be killed by PID.
pub fn pids_of_exe(exe: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}

/// Kills (SIGKILL, by PID) every process running `exe`, and waits until none is left.
pub fn kill_exe(exe: &Path) {
    for pid in pids_of_exe(exe) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let gone = wait_until(Duration::from_secs(10), || pids_of_exe(exe).is_empty());
    if !gone {
        eprintln!(
            "warning: {} still runs: {:?}",
            exe.display(),
            pids_of_exe(exe)
        );
    }
}
