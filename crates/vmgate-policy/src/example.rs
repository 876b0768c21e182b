//! The posts' office as a built-in example, with a demo directory so that
//! `vmgate plan --example` works where none of its users exist.

use crate::directory::StaticDirectory;

/// The example policy text (`examples/office.toml`).
pub const OFFICE_TOML: &str = include_str!("../examples/office.toml");

/// The name the example is shown under.
pub const OFFICE_NAME: &str = "examples/office.toml (built in)";

/// Users and groups of the example. The ids of myself (1021) and mybro (1022)
/// are those of the post's iptables script.
#[must_use]
pub fn demo_directory() -> StaticDirectory {
    StaticDirectory::new(
        "built-in demo directory of the example (not this machine's users): \
         myself=1021 mybro=1022 maggie=1023 anne=1024 charlie=1025 boss=1026 ralph=1027 mark=1028, \
         spicegrp=990 (no members) mygroup=991 bookkeeping=1100 (charlie)",
    )
    .with_user("myself", 1021, 100)
    .with_user("mybro", 1022, 100)
    .with_user("maggie", 1023, 100)
    .with_user("anne", 1024, 100)
    .with_user("charlie", 1025, 100)
    .with_user("boss", 1026, 100)
    .with_user("ralph", 1027, 100)
    .with_user("mark", 1028, 100)
    .with_group("users", 100, &[])
    .with_group("spicegrp", 990, &[])
    .with_group("mygroup", 991, &[])
    .with_group("bookkeeping", 1100, &["charlie"])
}
