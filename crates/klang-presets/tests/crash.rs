//! Kill a process with SIGKILL at random moments while it saves presets in a
//! loop: afterwards every preset loads and is the old or the new version.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use klang_dsp::Config;
use klang_dsp::config::{EqBand, FilterType};
use klang_presets::Library;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const CHILD_ENV: &str = "KLANG_PRESETS_CRASH_CHILD";
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Version `k` of a preset: `k` is readable back from the first band's frequency.
fn version(k: u32) -> Config {
    let eq = (0..12)
        .map(|i| EqBand {
            kind: FilterType::Peak,
            freq: 20.0 + f64::from(k) + f64::from(i) * 0.25,
            gain_db: -3.0,
            q: 1.0,
            slope: None,
        })
        .collect();
    let mut c = Config {
        eq,
        ..Config::default()
    };
    c.graphic_eq.gains_db = [1.5; 15];
    c
}

fn version_of(c: &Config) -> u32 {
    let k = c.eq[0].freq - 20.0;
    assert_eq!(
        *c,
        version(k as u32),
        "a preset is exactly one saved version"
    );
    k as u32
}

/// Not a test on its own: the child process of the crash test (does nothing
/// unless the parent set `KLANG_PRESETS_CRASH_CHILD`).
#[test]
fn crash_child_helper() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let lib = Library::open(Path::new(&dir)).unwrap();
    let mut k = NAMES
        .iter()
        .map(|n| version_of(&lib.load(n).unwrap().config))
        .max()
        .unwrap();
    loop {
        k += 1;
        for n in NAMES {
            lib.save(n, &version(k)).unwrap();
        }
    }
}

/// A small pseudo-random delay (no RNG dependency needed for this).
fn jitter_us(round: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let x = nanos
        .wrapping_mul(6364136223846793005)
        .wrapping_add(round.wrapping_mul(1442695040888963407));
    (x >> 33) % 60_000
}

/// Temporary files under `dir`, history directories included.
fn count_temps(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_temps(&e.path())
            } else {
                usize::from(e.file_name().to_string_lossy().contains(".tmp."))
            }
        })
        .sum()
}

#[test]
fn kill_during_save_never_loses_a_preset() {
    let dir = tempfile::tempdir().unwrap();
    let lib = Library::open(dir.path()).unwrap();
    for n in NAMES {
        lib.save(n, &version(0)).unwrap();
    }
    let rounds: u64 = std::env::var("KLANG_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let mut last = [0u32; 3];
    // Rounds in which the kill landed between creating a temp file and renaming it.
    let mut mid_write = 0u32;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_helper",
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child is in its save loop, then kill it at a random moment.
        let started = std::time::Instant::now();
        while version_of(&lib.load("a").unwrap().config) <= last[0] {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the child never saved"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(jitter_us(round)));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");

        let left_temps = count_temps(&dir.path().join("presets")) > 0;
        mid_write += u32::from(left_temps);
        let lib = Library::open(dir.path()).unwrap();
        for (i, n) in NAMES.iter().enumerate() {
            let k = version_of(&lib.load(n).unwrap().config);
            assert!(
                k >= last[i],
                "round {round}: {n} went back from {} to {k}",
                last[i]
            );
            last[i] = k;
            for v in lib.history(n).unwrap() {
                let text = lib.show_version(n, v).unwrap();
                klang_presets::parse_file_text(Path::new(n), &text).unwrap();
            }
        }
        // Each version is saved to a, b, c in that order.
        assert!(last[0] >= last[1] && last[1] >= last[2], "{last:?}");
        // No temporary files are left once the library is opened again.
        assert_eq!(count_temps(lib.dir()), 0, "round {round}");
    }
    assert!(last[0] >= rounds as u32, "every child saved: {last:?}");
    assert!(
        mid_write > 0,
        "no kill landed in the middle of a write in {rounds} rounds"
    );
    eprintln!("{mid_write} of {rounds} kills landed in the middle of a write; versions {last:?}");
}
