//! The preset library: saves, history, restore, migration of every past
//! schema, errors with file and line, diff, backup/restore.

use std::fs;
use std::path::Path;

use klang_dsp::Config;
use klang_presets::{HISTORY_LIMIT, Library, PresetError};

fn config(bass: f64) -> Config {
    let mut c = Config::default();
    c.tone.bass_db = bass;
    c
}

fn lib() -> (tempfile::TempDir, Library) {
    let dir = tempfile::tempdir().unwrap();
    let lib = Library::open(dir.path()).unwrap();
    (dir, lib)
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn save_load_and_bounded_history() {
    let (_d, lib) = lib();
    assert_eq!(lib.save("room", &config(0.0)).unwrap(), None);
    for k in 1..=25 {
        assert_eq!(
            lib.save("room", &config(f64::from(k) * 0.5)).unwrap(),
            Some(k)
        );
    }
    assert_eq!(lib.load("room").unwrap().config, config(12.5));
    let h = lib.history("room").unwrap();
    assert_eq!(h.len(), HISTORY_LIMIT);
    assert_eq!(h, (6..=25).collect::<Vec<u32>>());
    // Saving the same settings again adds nothing to the history.
    assert_eq!(lib.save("room", &config(12.5)).unwrap(), None);
    assert_eq!(lib.history("room").unwrap().len(), HISTORY_LIMIT);
    assert!(lib.show("room").unwrap().starts_with("# klang preset"));
    assert!(lib.show("room").unwrap().contains("\nschema = 2\n"));
}

#[test]
fn restore_brings_a_version_back_and_keeps_the_replaced_one() {
    let (_d, lib) = lib();
    lib.save("room", &config(1.0)).unwrap();
    lib.save("room", &config(2.0)).unwrap();
    lib.save("room", &config(3.0)).unwrap();
    assert_eq!(lib.restore("room", 1).unwrap(), config(1.0));
    assert_eq!(lib.load("room").unwrap().config, config(1.0));
    let h = lib.history("room").unwrap();
    assert_eq!(h, vec![1, 2, 3]);
    assert!(
        lib.show_version("room", 3)
            .unwrap()
            .contains("bass_db = 3.0")
    );
    let e = lib.restore("room", 9).unwrap_err();
    assert!(matches!(e, PresetError::NoVersion { .. }), "{e}");
    assert!(e.to_string().contains("[1, 2, 3]"), "{e}");
}

#[test]
fn rm_is_undoable() {
    let (_d, lib) = lib();
    lib.save("room", &config(4.0)).unwrap();
    let v = lib.rm("room").unwrap();
    assert!(matches!(
        lib.load("room"),
        Err(PresetError::NotFound { .. })
    ));
    assert_eq!(lib.restore("room", v).unwrap(), config(4.0));
    assert_eq!(lib.load("room").unwrap().config, config(4.0));
    assert!(matches!(
        lib.rm("nothing"),
        Err(PresetError::NotFound { .. })
    ));
}

#[test]
fn every_past_schema_fixture_keeps_loading() {
    let expected =
        Config::from_toml(&fs::read_to_string(fixtures().join("schema1.toml")).unwrap()).unwrap();
    let mut seen = 0;
    for e in fs::read_dir(fixtures()).unwrap() {
        let path = e.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let parsed = klang_presets::parse_file_text(&path, &text).unwrap();
        assert_eq!(parsed.config, expected, "{}", path.display());
        seen += 1;
    }
    assert_eq!(
        seen,
        klang_presets::CURRENT_SCHEMA as usize,
        "one fixture per schema"
    );
}

#[test]
fn schema1_is_migrated_on_load_and_the_original_kept() {
    let (_d, lib) = lib();
    let original = fs::read_to_string(fixtures().join("schema1.toml")).unwrap();
    fs::write(lib.path("old"), &original).unwrap();
    let loaded = lib.load("old").unwrap();
    assert_eq!(loaded.migrated_from, Some(1));
    assert_eq!(loaded.migration_note, None);
    let bak = lib.dir().join("old.toml.v1.bak");
    assert_eq!(fs::read_to_string(bak).unwrap(), original);
    let again = lib.load("old").unwrap();
    assert_eq!(again.migrated_from, None);
    assert_eq!(again.config, loaded.config);
    assert!(lib.show("old").unwrap().contains("schema = 2"));
}

fn invalid_line(e: &PresetError) -> Option<usize> {
    match e {
        PresetError::Invalid { line, .. } => *line,
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn bad_files_give_file_and_line() {
    let (_d, lib) = lib();
    let cases = [
        // damaged (cut off in the middle of a table)
        (
            "cut",
            "schema = 2\ninput_gain_db = -3.0\n[[eq]\ntype = \"pe",
            3,
            "cut.toml:3",
        ),
        // out of range
        (
            "range",
            "schema = 2\n\n[[eq]]\ntype = \"peak\"\nfreq = 99999.0\ngain_db = 1.0\n",
            5,
            "freq",
        ),
        // unknown field
        ("field", "schema = 2\nbass = 3\n", 2, "unknown field"),
        // a newer klang's file
        ("newer", "schema = 7\n", 1, "newer klang"),
        // another format saved under .toml
        (
            "apo",
            "# AutoEq\nPreamp: -6 dB\nFilter 1: ON PK Fc 100 Hz Gain -3 dB Q 1\n",
            2,
            "Equalizer APO",
        ),
    ];
    for (name, text, line, needle) in cases {
        fs::write(lib.path(name), text).unwrap();
        let e = lib.load(name).unwrap_err();
        assert_eq!(invalid_line(&e), Some(line), "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("{name}.toml")), "{msg}");
        assert!(msg.contains(needle), "{name}: {msg}");
    }
    // The list shows the damaged presets with their errors instead of hiding them.
    let list = lib.list().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|p| p.status.is_err()));
    // Bad names never touch the file system.
    for bad in ["../x", ".hidden", "", "a/b", "x y"] {
        assert!(
            matches!(
                lib.save(bad, &config(0.0)),
                Err(PresetError::BadName { .. })
            ),
            "{bad}"
        );
    }
    // An invalid config is refused before anything is written.
    let mut c = config(0.0);
    c.tone.bass_db = 99.0;
    assert!(lib.save("fine", &c).is_err());
    assert!(!lib.path("fine").exists());
}

#[test]
fn diff_shows_changed_settings_only() {
    let (_d, lib) = lib();
    lib.save("a", &config(1.0)).unwrap();
    lib.save("b", &config(2.0)).unwrap();
    let d = lib.diff(("a", None), ("b", None)).unwrap();
    assert!(
        d.contains("-bass_db = 1.0") && d.contains("+bass_db = 2.0"),
        "{d}"
    );
    assert_eq!(
        d.lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .count(),
        1
    );
    lib.save("a", &config(5.0)).unwrap();
    let d = lib.diff(("a", Some(1)), ("a", None)).unwrap();
    assert!(d.contains("a (version 1)"), "{d}");
    // Formatting and comments do not count.
    fs::write(
        lib.path("c"),
        "# mine\nschema = 2\n[tone]\nbass_db   =   5.0\n",
    )
    .unwrap();
    assert_eq!(lib.diff(("a", None), ("c", None)).unwrap(), "");
}

#[test]
fn backup_and_restore_move_everything_to_a_new_installation() {
    let (_d, lib) = lib();
    lib.save("room", &config(1.0)).unwrap();
    lib.save("room", &config(2.0)).unwrap();
    lib.save("desk", &config(-3.0)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state.toml");
    fs::write(&state, "preset = \"room\"\nvolume_db = -23.5\n").unwrap();
    let archive = work.path().join("klang-backup.toml");
    let s = lib.backup(Some(&state), &archive).unwrap();
    assert_eq!((s.presets, s.versions, s.state), (2, 1, true));

    let (_d2, fresh) = self::lib();
    let new_state = work.path().join("new/state.toml");
    let r = fresh.restore_backup(&archive, Some(&new_state)).unwrap();
    assert_eq!(r.presets, vec!["desk".to_string(), "room".to_string()]);
    assert_eq!(fresh.load("room").unwrap().config, config(2.0));
    assert_eq!(fresh.load("desk").unwrap().config, config(-3.0));
    assert_eq!(
        fresh.show_version("room", 1).unwrap(),
        lib.show_version("room", 1).unwrap()
    );
    assert_eq!(
        fs::read_to_string(new_state).unwrap(),
        fs::read_to_string(&state).unwrap()
    );
}

#[test]
fn a_damaged_backup_is_refused_before_anything_is_written() {
    let (_d, lib) = lib();
    lib.save("room", &config(1.0)).unwrap();
    lib.save("zz", &config(1.0)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("b.toml");
    lib.backup(None, &archive).unwrap();
    let text = fs::read_to_string(&archive).unwrap();

    let (_d2, fresh) = self::lib();
    // A preset inside the archive with a value out of range.
    let bad = text.replacen("bass_db = 1.0", "bass_db = 100.0", 2);
    let damaged = work.path().join("damaged.toml");
    fs::write(&damaged, bad).unwrap();
    let e = fresh.restore_backup(&damaged, None).unwrap_err();
    assert!(e.to_string().contains("damaged.toml:"), "{e}");
    assert!(e.to_string().contains("bass_db"), "{e}");
    assert!(fresh.list().unwrap().is_empty(), "nothing restored");

    // Not a backup at all, or cut off.
    let cut = work.path().join("cut.toml");
    fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let e = fresh.restore_backup(&cut, None).unwrap_err();
    assert!(
        matches!(e, PresetError::Archive { line: Some(_), .. }),
        "{e}"
    );
    assert!(fresh.list().unwrap().is_empty());
}

#[test]
fn restoring_a_backup_over_existing_presets_keeps_them_in_history() {
    let (_d, old) = lib();
    old.save("room", &config(1.0)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("b.toml");
    // No state file: the archive simply has none, and restore writes none.
    let s = old
        .backup(Some(&work.path().join("absent.toml")), &archive)
        .unwrap();
    assert!(!s.state);

    let (_d2, lib) = lib();
    lib.save("room", &config(7.0)).unwrap();
    let r = lib
        .restore_backup(&archive, Some(&work.path().join("state.toml")))
        .unwrap();
    assert_eq!(r.state, None);
    assert!(!work.path().join("state.toml").exists());
    assert_eq!(lib.load("room").unwrap().config, config(1.0));
    assert_eq!(
        lib.restore("room", 1).unwrap(),
        config(7.0),
        "the local version was kept"
    );
}

#[test]
fn concurrent_saves_take_turns_and_lose_no_history_version() {
    let (_d, lib) = lib();
    lib.save("room", &config(0.0)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let lib = lib.clone();
            std::thread::spawn(move || {
                for k in 0..10 {
                    lib.save("room", &config(f64::from(t * 10 + k) * 0.1 + 0.05))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // 41 saves of distinct settings: 40 replaced versions, numbered without gaps
    // or collisions; the last 20 are kept.
    assert_eq!(
        lib.history("room").unwrap(),
        (21..=40).collect::<Vec<u32>>()
    );
}
