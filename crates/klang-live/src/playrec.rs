//! Plays a signal to a sink and records a source at the same time: the live half of
//! `klang calibrate --sink NAME --source NAME`.
//!
//! # Why `pw-play` / `pw-record` and not pipewire-rs streams
//! This drives PipeWire's own reference clients (`pw-cat`, Debian's `pipewire-bin`) as two
//! child processes, raw f32 through their stdin and stdout. A measurement does not need
//! the two streams to start on the same sample: the deconvolution finds the delay, so
//! the real-time guarantees a `pw_stream` in our process would give buy nothing here.
//! What `pw-cat` does give is the part that is easy to get wrong: format negotiation,
//! resampling when the graph runs at another rate, channel mapping, linking by node
//! name, and draining the last buffer before it exits. With pipewire-rs we would
//! build the format pods by hand and add a second kind of PipeWire client to this crate
//! (whose only FFI is the engine's `pw_filter`); both children are ended by PID.
//!
//! A sink's monitor is recorded as `NAME.monitor` (the name `pactl list sources` shows):
//! the recorder then targets the sink with `stream.capture.sink = true`, which is how
//! WirePlumber 0.4 links a capture stream to a sink's monitor.

use std::io::{Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a stream may take to start moving audio before we give up.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Recorded after the player has drained: the sink's and the source's latency.
const TAIL: Duration = Duration::from_millis(500);

/// What to play where, and what to record from where.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRecord {
    /// `node.name` of the sink to play to (`pactl list short sinks`).
    pub sink: String,
    /// `node.name` of the source to record (`pactl list short sources`), or `SINK.monitor`.
    pub source: String,
    /// Sample rate of the signal and of the recording, Hz (PipeWire resamples if the
    /// graph runs at another rate).
    pub rate: u32,
    /// Channels played (the signal goes to every one of them).
    pub play_channels: u16,
    /// Channels recorded.
    pub record_channels: u16,
    /// The PipeWire daemon to use (`remote.name`, e.g. a socket path); `None`: the
    /// user's own, found through `PIPEWIRE_RUNTIME_DIR` / `XDG_RUNTIME_DIR`.
    pub remote: Option<String>,
}

/// A recording: interleaved f32 frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Channels per frame.
    pub channels: usize,
    /// Interleaved samples.
    pub samples: Vec<f32>,
}

impl Captured {
    /// One channel's samples.
    pub fn channel(&self, index: usize) -> Vec<f32> {
        self.samples
            .iter()
            .skip(index)
            .step_by(self.channels.max(1))
            .copied()
            .collect()
    }
}

/// Why the signal could not be played and recorded. Messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum PlayRecordError {
    /// `pw-cli`, `pw-play` or `pw-record` could not be started.
    #[error(
        "cannot start {program}: {source} (install PipeWire's tools: apt install pipewire-bin)"
    )]
    Spawn {
        /// The program.
        program: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// No sink or source of that name.
    #[error("there is no {kind} named `{name}`; {kind}s: {}", known.join(", "))]
    NoSuchNode {
        /// "sink" or "source".
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// A stream did not start moving audio.
    #[error("{what} did not start within {} s: {hint}", START_TIMEOUT.as_secs())]
    NotStarted {
        /// "the recording of SOURCE" or "the playback to SINK".
        what: String,
        /// What to check.
        hint: &'static str,
    },
    /// A helper failed.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: &'static str,
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// Reading or writing a pipe failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The parameters are unusable.
    #[error("{0}")]
    Invalid(String),
}

/// A child process killed by its PID when dropped (if it is still running).
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A node of the graph as `pw-cli ls Node` lists it.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    name: String,
    class: String,
}

/// The nodes in `pw-cli ls Node`'s output.
fn parse_nodes(text: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut current: Option<Node> = None;
    let value = |line: &str| {
        line.split_once('=')
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
    };
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("id ") {
            nodes.extend(current.take());
            current = Some(Node {
                name: String::new(),
                class: String::new(),
            });
        } else if let Some(n) = current.as_mut() {
            if t.starts_with("node.name ") {
                n.name = value(t).unwrap_or_default();
            } else if t.starts_with("media.class ") {
                n.class = value(t).unwrap_or_default();
            }
        }
    }
    nodes.extend(current);
    nodes
}

fn is_sink(n: &Node) -> bool {
    n.class == "Audio/Sink" || n.class == "Audio/Duplex"
}

fn is_source(n: &Node) -> bool {
    n.class.starts_with("Audio/Source") || n.class == "Audio/Duplex"
}

/// Checks both names against the graph; returns the recorder's target and whether it
/// is a sink's monitor.
fn resolve(p: &PlayRecord) -> Result<(String, bool), PlayRecordError> {
    let out = helper("pw-cli", p)
        .args(["ls", "Node"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PlayRecordError::Spawn {
            program: "pw-cli",
            source,
        })?;
    if !out.status.success() {
        return Err(PlayRecordError::Failed {
            program: "pw-cli ls Node",
            status: out.status.to_string(),
            stderr: format!(
                "{} (is PipeWire running for this user?)",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let nodes = parse_nodes(&String::from_utf8_lossy(&out.stdout));
    let sinks: Vec<String> = nodes
        .iter()
        .filter(|n| is_sink(n))
        .map(|n| n.name.clone())
        .collect();
    if !sinks.contains(&p.sink) {
        return Err(PlayRecordError::NoSuchNode {
            kind: "sink",
            name: p.sink.clone(),
            known: sinks,
        });
    }
    if nodes.iter().any(|n| is_source(n) && n.name == p.source) {
        return Ok((p.source.clone(), false));
    }
    if let Some(sink) = p.source.strip_suffix(".monitor")
        && sinks.iter().any(|s| s == sink)
    {
        return Ok((sink.to_owned(), true));
    }
    let mut known: Vec<String> = nodes
        .iter()
        .filter(|n| is_source(n))
        .map(|n| n.name.clone())
        .collect();
    known.extend(sinks.iter().map(|s| format!("{s}.monitor")));
    Err(PlayRecordError::NoSuchNode {
        kind: "source",
        name: p.source.clone(),
        known,
    })
}

/// `program`, talking to `p.remote` if one is given.
fn helper(program: &str, p: &PlayRecord) -> Command {
    let mut cmd = Command::new(program);
    if let Some(r) = &p.remote {
        cmd.args(["--remote", r]);
    }
    cmd
}

fn props(role: &str, extra: &str) -> String {
    format!(
        "{{ node.name = \"klang-calibrate-{role}-{}\" application.name = \"klang calibrate\" node.dont-reconnect = true {extra} }}",
        std::process::id()
    )
}

fn spawn(program: &'static str, cmd: &mut Command) -> Result<Helper, PlayRecordError> {
    cmd.stderr(Stdio::piped())
        .spawn()
        .map(Helper)
        .map_err(|source| PlayRecordError::Spawn { program, source })
}

/// Reads the recorder's stdout until it closes, counting bytes as they come.
fn reader(mut out: ChildStdout, count: Arc<AtomicUsize>) -> JoinHandle<std::io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = out.read(&mut buf)?;
            if n == 0 {
                return Ok(all);
            }
            all.extend_from_slice(&buf[..n]);
            count.store(all.len(), Ordering::Release);
        }
    })
}

fn stderr_of(h: &mut Helper) -> String {
    let mut s = String::new();
    if let Some(mut e) = h.0.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s.trim().to_owned()
}

/// Plays `signal` (mono, at `p.rate`, on every played channel) to `p.sink` while
/// recording `p.source`, from before the signal starts until after it has drained.
/// `progress` gets the fraction of the signal handed to the player (0 to 1), a few
/// times a second. Both helpers are ended by PID whatever happens.
pub fn play_and_record(
    p: &PlayRecord,
    signal: &[f32],
    progress: &mut dyn FnMut(f64),
) -> Result<Captured, PlayRecordError> {
    if p.play_channels == 0 || p.record_channels == 0 || p.rate == 0 || signal.is_empty() {
        return Err(PlayRecordError::Invalid(
            "rate, channels and signal must not be zero or empty".into(),
        ));
    }
    let (target, monitor) = resolve(p)?;
    let rate = p.rate.to_string();

    let mut rec = spawn(
        "pw-record",
        helper("pw-record", p)
            .args(["--target", &target, "--rate", &rate, "--format", "f32"])
            .args(["--channels", &p.record_channels.to_string()])
            .args([
                "-P",
                &props(
                    "rec",
                    if monitor {
                        "stream.capture.sink = true"
                    } else {
                        ""
                    },
                ),
            ])
            .arg("-")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let recorded = Arc::new(AtomicUsize::new(0));
    let out = rec.0.stdout.take().ok_or(PlayRecordError::Io {
        what: "the recorder's output",
        source: std::io::Error::other("no pipe"),
    })?;
    let reading = reader(out, recorded.clone());
    let started = Instant::now();
    while recorded.load(Ordering::Acquire) == 0 {
        if let Ok(Some(status)) = rec.0.try_wait() {
            return Err(PlayRecordError::Failed {
                program: "pw-record",
                status: status.to_string(),
                stderr: stderr_of(&mut rec),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(PlayRecordError::NotStarted {
                what: format!("the recording of {}", p.source),
                hint: "check that the source is not suspended or muted (wpctl status)",
            });
        }
        thread::sleep(Duration::from_millis(10));
    }

    let mut play = spawn(
        "pw-play",
        helper("pw-play", p)
            .args(["--target", &p.sink, "--rate", &rate, "--format", "f32"])
            .args(["--channels", &p.play_channels.to_string()])
            .args(["-P", &props("play", "")])
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    )?;
    let mut stdin = play.0.stdin.take().ok_or(PlayRecordError::Io {
        what: "the player's input",
        source: std::io::Error::other("no pipe"),
    })?;
    // The writer blocks while the player's pipe is full, so what it has written is
    // (up to a pipe's worth) what has been played.
    let written = Arc::new(AtomicUsize::new(0));
    let frames = signal.len();
    let bytes: Vec<u8> = signal
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.to_le_bytes(), usize::from(p.play_channels)).flatten())
        .collect();
    let frame_bytes = 4 * usize::from(p.play_channels);
    let writer = {
        let written = written.clone();
        let chunk = frame_bytes * (p.rate as usize / 20).max(1);
        thread::spawn(move || -> std::io::Result<()> {
            for c in bytes.chunks(chunk) {
                stdin.write_all(c)?;
                written.fetch_add(c.len(), Ordering::Release);
            }
            Ok(()) // dropping stdin is the end of input: pw-play drains and exits
        })
    };
    let seconds = frames as f64 / f64::from(p.rate);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds) + 2 * START_TIMEOUT;
    let mut last = (0usize, Instant::now());
    let status = loop {
        let w = written.load(Ordering::Acquire);
        progress((w as f64 / (frames * frame_bytes) as f64).min(1.0));
        if w != last.0 {
            last = (w, Instant::now());
        }
        if let Some(status) = play.0.try_wait().map_err(|source| PlayRecordError::Io {
            what: "waiting for pw-play",
            source,
        })? {
            break status;
        }
        if last.1.elapsed() > START_TIMEOUT || Instant::now() > deadline {
            return Err(PlayRecordError::NotStarted {
                what: format!("the playback to {}", p.sink),
                hint: "check that the sink is not suspended and nothing holds it exclusively (wpctl status)",
            });
        }
        thread::sleep(Duration::from_millis(100));
    };
    let wrote = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
    if !status.success() {
        return Err(PlayRecordError::Failed {
            program: "pw-play",
            status: status.to_string(),
            stderr: stderr_of(&mut play),
        });
    }
    wrote.map_err(|source| PlayRecordError::Io {
        what: "writing to pw-play",
        source,
    })?;
    progress(1.0);
    thread::sleep(TAIL);
    drop(rec); // killed by PID: the raw stream needs no trailer
    let raw = reading
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("reader thread panicked")))
        .map_err(|source| PlayRecordError::Io {
            what: "reading from pw-record",
            source,
        })?;
    let channels = usize::from(p.record_channels);
    let whole = raw.len() / (4 * channels) * 4 * channels;
    let samples = raw[..whole]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Captured {
        rate: p.rate,
        channels,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_read_from_pw_cli_output() {
        let text = "\tid 31, type PipeWire:Interface:Node/3\n \t\tobject.serial = \"31\"\n \t\tnode.name = \"Dummy-Driver\"\n\
                    \tid 40, type PipeWire:Interface:Node/3\n \t\tnode.description = \"a = b\"\n \t\tnode.name = \"room_out\"\n \t\tmedia.class = \"Audio/Sink\"\n\
                    \tid 41, type PipeWire:Interface:Node/3\n \t\tnode.name = \"mic\"\n \t\tmedia.class = \"Audio/Source\"\n";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 3);
        assert_eq!(
            nodes[1],
            Node {
                name: "room_out".into(),
                class: "Audio/Sink".into()
            }
        );
        assert!(is_sink(&nodes[1]) && is_source(&nodes[2]) && !is_source(&nodes[0]));
    }
}
