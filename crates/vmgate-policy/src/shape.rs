//! The shape of a policy document, checked before serde reads it, so that
//! every syntax error, unknown key, wrong type and missing key is reported at
//! once (serde stops at the first). `raw`'s `deny_unknown_fields` stays the
//! backstop; a test keeps the two in step.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::Diagnostic;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    StrOrInt,
    Strs,
    Table(&'static [Key]),
    Tables(&'static [Key]),
}

#[derive(Debug)]
struct Key {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn k(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: true,
    }
}

const DEFAULTS: &[Key] = &[
    k("viewer", Kind::Str),
    k("group", Kind::Str),
    k("exempt_root", Kind::Bool),
    k("log_denied", Kind::Bool),
    k("nopasswd", Kind::Bool),
    k("timezone", Kind::Str),
    k("log_prefix", Kind::Str),
    k("env_keep", Kind::Strs),
];
const SERVER: &[Key] = &[
    req("name", Kind::Str),
    req("addresses", Kind::Strs),
    req("guard_ports", Kind::StrOrInt),
];
const GRANT: &[Key] = &[
    k("users", Kind::Strs),
    k("groups", Kind::Strs),
    k("days", Kind::Strs),
    k("hours", Kind::Str),
];
const CONSOLE: &[Key] = &[
    req("name", Kind::Str),
    req("server", Kind::Str),
    req("port", Kind::Int),
    k("tls", Kind::Bool),
    k("ca_file", Kind::Str),
    k("password_file", Kind::Str),
    k("host_subject", Kind::Str),
    k("title", Kind::Str),
    k("nopasswd", Kind::Bool),
    k("allow", Kind::Tables(GRANT)),
];
const PIN: &[Key] = &[
    req("command", Kind::Str),
    k("args", Kind::Strs),
    k("users", Kind::Strs),
    k("groups", Kind::Strs),
    req("group", Kind::Str),
    k("nopasswd", Kind::Bool),
];
const ROOT: &[Key] = &[
    k("defaults", Kind::Table(DEFAULTS)),
    k("server", Kind::Tables(SERVER)),
    k("console", Kind::Tables(CONSOLE)),
    k("pin", Kind::Tables(PIN)),
];

/// Every shape problem of `text`; empty when serde can read it.
#[must_use]
pub fn check_shape(text: &str) -> Vec<Diagnostic> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut out: Vec<Diagnostic> = errors
        .iter()
        .map(|e| {
            Diagnostic::new(
                e.span(),
                "document",
                format!("TOML syntax: {}", e.message().trim()),
                "fix the TOML syntax (strings in double quotes, one key = value per line)",
            )
        })
        .collect();
    table(&mut out, doc.get_ref(), doc.span(), ROOT, "");
    out
}

fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Int => "an integer",
        Kind::Bool => "true or false",
        Kind::StrOrInt => "a string such as \"20001-20010\" or a port number",
        Kind::Strs => "an array of strings",
        Kind::Table(_) => "a table",
        Kind::Tables(_) => "an array of tables",
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

fn table(out: &mut Vec<Diagnostic>, t: &DeTable<'_>, span: Range<usize>, keys: &[Key], path: &str) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    for (key, val) in t.iter() {
        let name: &str = key.get_ref();
        match keys.iter().find(|k| k.name == name) {
            Some(k) => value(out, val, k.kind, &join(name)),
            None => {
                let known: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let near = known
                    .iter()
                    .min_by_key(|k| distance(name, k))
                    .filter(|k| distance(name, k) <= 2);
                let hint = match near {
                    Some(n) => format!(
                        "did you mean `{n}`? (known keys here: {})",
                        known.join(", ")
                    ),
                    None => format!("known keys here: {}", known.join(", ")),
                };
                out.push(Diagnostic::new(
                    Some(key.span()),
                    join(name),
                    format!("unknown key `{name}`"),
                    hint,
                ));
            }
        }
    }
    for k in keys.iter().filter(|k| k.required) {
        if !t.iter().any(|(key, _)| key.get_ref() == k.name) {
            out.push(Diagnostic::new(
                Some(span.clone()),
                join(k.name),
                format!("missing key `{}`", k.name),
                format!("add `{} = ...` ({})", k.name, expected(k.kind)),
            ));
        }
    }
}

fn value(out: &mut Vec<Diagnostic>, v: &Spanned<DeValue<'_>>, kind: Kind, path: &str) {
    let ok = match (kind, v.get_ref()) {
        (Kind::Str | Kind::StrOrInt, DeValue::String(_))
        | (Kind::Int | Kind::StrOrInt, DeValue::Integer(_))
        | (Kind::Bool, DeValue::Boolean(_)) => true,
        (Kind::Strs, DeValue::Array(a)) => {
            for (i, e) in a.iter().enumerate() {
                if !matches!(e.get_ref(), DeValue::String(_)) {
                    out.push(Diagnostic::new(
                        Some(e.span()),
                        format!("{path}[{i}]"),
                        format!("expected a string, found {}", describe(e.get_ref())),
                        "write each entry in double quotes",
                    ));
                }
            }
            true
        }
        (Kind::Table(keys), DeValue::Table(t)) => {
            table(out, t, v.span(), keys, path);
            true
        }
        (Kind::Tables(keys), DeValue::Array(a)) => {
            for (i, e) in a.iter().enumerate() {
                match e.get_ref() {
                    DeValue::Table(t) => table(out, t, e.span(), keys, &format!("{path}[{i}]")),
                    other => out.push(Diagnostic::new(
                        Some(e.span()),
                        format!("{path}[{i}]"),
                        format!("expected a table, found {}", describe(other)),
                        "write `{ key = value, ... }`",
                    )),
                }
            }
            true
        }
        _ => false,
    };
    if !ok {
        out.push(Diagnostic::new(
            Some(v.span()),
            path,
            format!(
                "expected {}, found {}",
                expected(kind),
                describe(v.get_ref())
            ),
            format!(
                "write `{}` as {}",
                path.rsplit('.').next().unwrap_or(path),
                expected(kind)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the schema knows, once: serde (deny_unknown_fields) must read
    /// it too, so the two lists cannot drift apart silently.
    const EVERY_KEY: &str = r#"
[defaults]
viewer = "/usr/bin/remote-viewer"
group = "vmconsole"
exempt_root = true
log_denied = false
nopasswd = true
timezone = "UTC"
log_prefix = "x: "
env_keep = ["A"]
[[server]]
name = "s"
addresses = ["10.200.0.1"]
guard_ports = 20001
[[console]]
name = "c"
server = "s"
port = 20001
tls = true
ca_file = "/a"
password_file = "/b"
host_subject = "CN=x"
title = "t"
nopasswd = false
allow = [ { users = ["u"], groups = ["g"], days = ["mon"], hours = "08:00-09:00" } ]
[[pin]]
command = "/c"
args = ["-x"]
users = ["u"]
groups = ["g"]
group = "pg"
nopasswd = true
"#;

    #[test]
    fn schema_and_serde_know_the_same_keys() {
        assert_eq!(check_shape(EVERY_KEY), vec![]);
        let raw: Result<crate::raw::RawPolicy, _> = toml::from_str(EVERY_KEY);
        assert!(raw.is_ok(), "{raw:?}");
        let mut n = 0;
        for keys in [ROOT, DEFAULTS, SERVER, CONSOLE, GRANT, PIN] {
            for k in keys {
                assert!(
                    EVERY_KEY.contains(&format!("{} ", k.name))
                        || EVERY_KEY.contains(&format!("[{}]", k.name))
                        || EVERY_KEY.contains(&format!("[[{}]]", k.name)),
                    "{}",
                    k.name
                );
                n += 1;
            }
        }
        assert_eq!(n, 35);
    }

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(distance("viewr", "viewer"), 1);
        assert_eq!(distance("alow", "allow"), 1);
    }
}
