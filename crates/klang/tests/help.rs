//! The help text is generated from the flag definitions; snapshots make every change
//! to the command line visible in review.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_klang"))
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!(help(&["--help"]));
}

#[test]
fn process_help() {
    insta::assert_snapshot!(help(&["process", "--help"]));
}

#[test]
fn response_help() {
    insta::assert_snapshot!(help(&["response", "--help"]));
}

#[test]
fn demo_help() {
    insta::assert_snapshot!(help(&["demo", "--help"]));
}

#[test]
fn run_help() {
    insta::assert_snapshot!(help(&["run", "--help"]));
}

#[test]
fn ctl_help() {
    insta::assert_snapshot!(help(&["ctl", "--help"]));
}

#[test]
fn ctl_volume_help() {
    insta::assert_snapshot!(help(&["ctl", "volume", "--help"]));
}

#[test]
fn preset_help() {
    insta::assert_snapshot!(help(&["preset", "--help"]));
}

#[test]
fn sweep_help() {
    insta::assert_snapshot!(help(&["sweep", "--help"]));
}

#[test]
fn calibrate_help() {
    insta::assert_snapshot!(help(&["calibrate", "--help"]));
}
