//! `klang preset …`, `klang backup/restore`, `klang sweep` and `klang calibrate`, run as
//! the user runs them, each test in its own XDG_CONFIG_HOME / XDG_STATE_HOME.

use std::path::Path;
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn klang(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_klang"))
            .args(args)
            .current_dir(self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.klang(args);
        assert!(
            out.status.success(),
            "klang {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

const ROOM_PEAK: &str = "[[eq]]\ntype = \"peak\"\nfreq = 100.0\ngain_db = 6.0\nq = 4.0\n";

#[test]
fn save_list_show_export_import_round_trip() {
    let env = Env::new();
    std::fs::write(
        env.path("p.toml"),
        format!("input_gain_db = -3.0\n{ROOM_PEAK}"),
    )
    .unwrap();
    env.ok(&["preset", "save", "living", "p.toml"]);
    let list = env.ok(&["preset", "list"]);
    assert!(list.starts_with("living\tschema 2"), "{list}");
    let shown = env.ok(&["preset", "show", "living"]);
    assert!(
        shown.contains("schema = 2") && shown.contains("freq = 100.0"),
        "{shown}"
    );
    env.ok(&[
        "preset", "export", "living", "--format", "apo", "--out", "l.txt",
    ]);
    let apo = std::fs::read_to_string(env.path("l.txt")).unwrap();
    assert!(apo.contains("Preamp: -3.0 dB"), "{apo}");
    assert!(apo.contains("PK Fc 100.0 Hz Gain 6.0 dB Q 4.0"), "{apo}");
    env.ok(&["preset", "import", "l.txt", "--name", "back"]);
    assert_eq!(
        env.ok(&["preset", "diff", "living", "back"]).trim(),
        "klang: same settings"
    );
    // Saving again keeps the old version; restore brings it back.
    std::fs::write(env.path("p2.toml"), "input_gain_db = -6.0\n").unwrap();
    env.ok(&["preset", "save", "living", "p2.toml"]);
    assert_eq!(env.ok(&["preset", "history", "living"]).trim(), "1");
    env.ok(&["preset", "restore", "living", "--version", "1"]);
    assert_eq!(
        env.ok(&["preset", "diff", "living", "back"]).trim(),
        "klang: same settings"
    );
    // Backup, remove, restore.
    env.ok(&["backup", "all.toml"]);
    env.ok(&["preset", "rm", "back"]);
    assert!(!env.ok(&["preset", "list"]).contains("back"));
    env.ok(&["restore", "all.toml"]);
    assert!(env.ok(&["preset", "list"]).contains("back"));
}

#[test]
fn a_damaged_preset_names_file_and_line_and_exits_3() {
    let env = Env::new();
    let dir = env.path("config/klang/presets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.toml"), "schema = 2\n[[eq]\n").unwrap();
    let out = env.klang(&["preset", "show", "bad"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2"), "{err}");
}

#[test]
fn load_without_a_running_engine_says_so() {
    let env = Env::new();
    std::fs::write(env.path("p.toml"), ROOM_PEAK).unwrap();
    env.ok(&["preset", "save", "x", "p.toml"]);
    let out = env.klang(&["preset", "load", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no running engine"));
}

fn eq_bands(text: &str) -> Vec<(f64, f64)> {
    let mut bands = Vec::new();
    let mut freq = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("freq = ") {
            freq = Some(v.parse::<f64>().unwrap());
        }
        if let (Some(v), Some(f)) = (line.strip_prefix("gain_db = "), freq) {
            bands.push((f, v.parse::<f64>().unwrap()));
            freq = None;
        }
    }
    bands
}

#[test]
fn calibrate_finds_the_rooms_peak_and_cuts_it() {
    let env = Env::new();
    env.ok(&["sweep", "--out", "sweep.wav", "--seconds", "2"]);
    std::fs::write(env.path("room.toml"), ROOM_PEAK).unwrap();
    env.ok(&["process", "sweep.wav", "rec.wav", "--config", "room.toml"]);
    let table = env.ok(&[
        "calibrate",
        "--sweep",
        "sweep.wav",
        "--recording",
        "rec.wav",
        "--out",
        "fix.toml",
        "--apo",
        "fix.txt",
        "--plot",
        "fix.png",
    ]);
    assert!(table.contains("freq Hz"), "{table}");
    let fix = std::fs::read_to_string(env.path("fix.toml")).unwrap();
    let bands = eq_bands(&fix);
    assert!(
        bands
            .iter()
            .any(|&(f, g)| (f - 100.0).abs() <= 10.0 && (g + 6.0).abs() <= 1.5),
        "no cut near 100 Hz, -6 dB in {bands:?}"
    );
    assert!(env.path("fix.txt").exists() && env.path("fix.png").exists());
}

#[test]
fn calibrate_with_a_silent_recording_fails_and_writes_nothing() {
    let env = Env::new();
    env.ok(&["sweep", "--out", "sweep.wav", "--seconds", "1"]);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(env.path("silent.wav"), spec).unwrap();
    for _ in 0..48_000 * 3 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let out = env.klang(&[
        "calibrate",
        "--sweep",
        "sweep.wav",
        "--recording",
        "silent.wav",
        "--out",
        "fix.toml",
        "--plot",
        "fix.png",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("silent.wav") && err.contains("silent"),
        "{err}"
    );
    assert!(!Path::new(&env.path("fix.toml")).exists());
    assert!(!env.path("fix.png").exists());
}

#[test]
fn load_sends_the_presets_settings_to_the_engine() {
    use std::io::{BufRead, BufReader, Write};
    let env = Env::new();
    std::fs::write(env.path("p.toml"), ROOM_PEAK).unwrap();
    env.ok(&["preset", "save", "x", "p.toml"]);
    // A stand-in for `klang run`'s control socket: one request, one answer.
    let dir = env.path("run/klang");
    std::fs::create_dir_all(&dir).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.join("control.sock")).unwrap();
    let engine = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream)
            .write_all(b"{\"ok\":true,\"message\":\"switched\",\"status\":null}\n")
            .unwrap();
        line
    });
    let out = env.ok(&["preset", "load", "x"]);
    assert_eq!(out.trim(), "switched");
    let request = engine.join().unwrap();
    assert!(request.contains("\"cmd\":\"preset\""), "{request}");
    // The engine is handed a plain klang TOML file with the preset's settings.
    let name = request
        .split("\"name\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let sent = std::fs::read_to_string(name).unwrap();
    assert!(
        sent.contains("freq = 100.0") && !sent.contains("schema"),
        "{sent}"
    );
}
