//! Running the system's tools: optional network namespace, stdin fed from a thread so a
//! 10,000-user ruleset cannot deadlock on a full pipe, stderr kept for the error.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A command line to run, optionally inside a named network namespace.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub(crate) fn new(program: &str) -> Self {
        Cmd {
            argv: vec![program.into()],
            env: Vec::new(),
        }
    }

    /// Runs the command through `ip netns exec NS` when `netns` is given.
    pub(crate) fn in_netns(program: &str, netns: Option<&str>) -> Self {
        match netns {
            Some(ns) => Cmd::new("ip").args(["netns", "exec", ns, program]),
            None => Cmd::new(program),
        }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the program (kept through `ip netns exec`).
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs to completion; `Ok(stdout)` on exit status 0, otherwise [`Error::Tool`] with stderr.
    pub(crate) fn run(&self, stdin: Option<&[u8]>) -> Result<String> {
        let out = self.output(stdin)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(self.failed(&out))
        }
    }

    pub(crate) fn failed(&self, out: &std::process::Output) -> Error {
        Error::Tool {
            command: self.display(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }
    }

    /// Runs to completion and returns whatever happened, for callers that read exit codes.
    pub(crate) fn output(&self, stdin: Option<&[u8]>) -> Result<std::process::Output> {
        let program = self.argv[0].to_string_lossy().into_owned();
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.clone(),
                source,
            })?;
        let pipe = child.stdin.take();
        let waited = std::thread::scope(|s| {
            if let (Some(mut pipe), Some(data)) = (pipe, stdin) {
                // A write error here means the tool exited early; its stderr says why.
                s.spawn(move || {
                    let _ = pipe.write_all(data);
                });
            }
            child.wait_with_output()
        });
        waited.map_err(|source| Error::Spawn { program, source })
    }
}

/// Whether `program` can be found on `PATH` (or is an existing absolute path).
pub(crate) fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
