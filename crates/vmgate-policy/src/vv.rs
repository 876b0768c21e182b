//! Connection files (`/etc/vmgate/consoles/NAME.vv`, virt-viewer format).
//!
//! Only the pinned viewer, running with the special group, can read them
//! (root:GROUP 0640), so users never learn a VM's address choice or password.
//! Secrets are not part of the plan: `apply` reads the CA and password files
//! (root-only) and passes their contents to [`VvFile::render`].

use std::fmt::Write as _;

use crate::policy::{Console, Policy};

/// One connection file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VvFile {
    /// Console name.
    pub console: String,
    /// Where it is written.
    pub path: String,
    /// The server address the viewer connects to (the first listed).
    pub host: String,
    /// Port (TLS port when `tls`).
    pub port: u16,
    /// TLS only.
    pub tls: bool,
    /// CA certificate file to embed.
    pub ca_file: Option<String>,
    /// Password file to embed.
    pub password_file: Option<String>,
    /// TLS subject.
    pub host_subject: Option<String>,
    /// Window title.
    pub title: String,
    /// Owner group (the special group).
    pub group: String,
    /// Mode.
    pub mode: u32,
}

/// Secrets read by `apply` from root-only files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Secrets<'a> {
    /// PEM text of the CA certificate.
    pub ca: Option<&'a str>,
    /// The Spice password.
    pub password: Option<&'a str>,
}

impl VvFile {
    /// The file for a console.
    #[must_use]
    pub fn new(policy: &Policy, etc_dir: &str, c: &Console) -> Self {
        let server = policy.server_of(c);
        Self {
            console: c.name.clone(),
            path: policy.vv_path(etc_dir, c),
            host: server
                .addresses
                .first()
                .map_or_else(String::new, ToString::to_string),
            port: c.port,
            tls: c.tls,
            ca_file: c.ca_file.clone(),
            password_file: c.password_file.clone(),
            host_subject: c.host_subject.clone(),
            title: c
                .title
                .clone()
                .unwrap_or_else(|| format!("{} (vmgate)", c.name)),
            group: policy.defaults.group.name.clone(),
            mode: 0o640,
        }
    }

    /// The file text. Without secrets (as in a plan), the lines that would hold
    /// them say where apply takes them from.
    #[must_use]
    pub fn render(&self, secrets: Secrets<'_>) -> String {
        let mut s = String::from("[virt-viewer]\ntype=spice\n");
        let _ = writeln!(s, "host={}", self.host);
        if self.tls {
            // TLS port only: the viewer cannot fall back to a plain channel.
            let _ = writeln!(s, "tls-port={}", self.port);
        } else {
            let _ = writeln!(s, "port={}", self.port);
        }
        if let Some(subject) = &self.host_subject {
            let _ = writeln!(s, "host-subject={subject}");
        }
        let _ = writeln!(s, "title={}", self.title);
        s.push_str("delete-this-file=0\n");
        match (secrets.ca, &self.ca_file) {
            (Some(pem), _) => {
                let _ = writeln!(s, "ca={}", pem.trim_end().replace('\n', "\\n"));
            }
            (None, Some(f)) => {
                let _ = writeln!(s, "# ca=<the certificate in {f}, embedded by vmgate apply>");
            }
            _ => {}
        }
        match (secrets.password, &self.password_file) {
            (Some(p), _) => {
                let _ = writeln!(s, "password={p}");
            }
            (None, Some(f)) => {
                let _ = writeln!(s, "# password=<read from {f} by vmgate apply>");
            }
            _ => {}
        }
        s
    }
}
