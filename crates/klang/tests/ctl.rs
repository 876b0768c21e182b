//! `klang run` and `klang ctl` without an engine: a bad config is refused before anything
//! starts (exit 3, file, line and field), and `ctl` without a running engine says so.

mod common;
use common::klang_in as klang;

#[test]
fn run_refuses_an_invalid_config_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[output]\nmains = \"a\"\nsecond = \"a\"\n",
            "line 3",
            "output.second",
        ),
        (
            "[tone]\nbass_db = 0.0\n[crossover]\nfreq = 30000\n",
            "line 4",
            "crossover.freq",
        ),
        ("[[route]]\nname = \"x\"\n", "line 2", "name"),
    ];
    for (text, line, field) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = klang(&["run", "--config", path.to_str().unwrap()], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{text}: {err}");
        for want in ["bad.toml", line, field] {
            assert!(err.contains(want), "{text}: {want:?} missing in {err}");
        }
        assert!(!dir.path().join("klang/control.sock").exists());
    }
}

#[test]
fn ctl_without_an_engine_says_how_to_find_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = klang(&["ctl", "status"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("control.sock") && err.contains("klang run"),
        "{err}"
    );
    let out = klang(&["ctl", "volume", "loud"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}
