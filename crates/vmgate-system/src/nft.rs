//! Our nftables table: checked, loaded in one transaction that atomically replaces the
//! previous version, listed as JSON, deleted. Other tables are never touched.

use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// One `inet` table owned by vmgate (or by a test), optionally inside a network namespace.
///
/// Every operation runs `nft` (through `ip netns exec NS` when a namespace is set) and
/// names only this table, so other tables on the machine are never read or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    name: String,
    netns: Option<String>,
}

impl NftTable {
    /// The table `inet NAME` in the current network namespace.
    ///
    /// Names are restricted to ASCII letters, digits and `_` (starting with a letter), so
    /// they can be pasted into a ruleset without quoting.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_start || !ok_chars || name.len() > 64 {
            return Err(Error::InvalidName {
                kind: "nft table",
                name,
                reason: "use 1-64 ASCII letters, digits or '_', starting with a letter",
            });
        }
        Ok(NftTable { name, netns: None })
    }

    /// The same table, but inside the named network namespace (`ip netns exec NS nft ...`).
    #[must_use]
    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The text of the one transaction that replaces our table with `table_text`.
    ///
    /// `table_text` is the complete new table (`table inet NAME { ... }`). Creating an empty
    /// table first makes the `delete` valid when the table does not exist yet; all three
    /// statements are one transaction, so the kernel switches from the old to the new
    /// rules at once, and keeps the old ones if anything in the new text fails.
    pub fn replace_transaction(&self, table_text: &str) -> String {
        format!(
            "table inet {name} {{}}\ndelete table inet {name}\n{table_text}\n",
            name = self.name
        )
    }

    /// Refuses text that would touch anything but our table: a `flush ruleset`, or a
    /// `table` line naming another table. A wrong name in a caller must not be able to
    /// replace or wipe someone else's rules.
    fn only_our_table(&self, table_text: &str) -> Result<()> {
        for line in table_text.lines() {
            let mut words = line.split_whitespace();
            let foreign = match words.next() {
                // `table FAMILY NAME {`
                Some("table") => !self.names_us(words.next(), words.next()),
                // `add|create|delete|destroy|flush|reset KIND FAMILY NAME ...`
                Some("add" | "create" | "delete" | "destroy" | "flush" | "reset") => {
                    match words.next() {
                        Some("ruleset") | None => true,
                        Some(_kind) => !self.names_us(words.next(), words.next()),
                    }
                }
                _ => false,
            };
            if foreign {
                return Err(Error::ForeignRuleset {
                    table: self.name.clone(),
                    line: line.trim().to_owned(),
                });
            }
        }
        Ok(())
    }

    fn names_us(&self, family: Option<&str>, name: Option<&str>) -> bool {
        family == Some("inet") && name.map(|n| n.trim_end_matches('{')) == Some(self.name.as_str())
    }

    /// `nft` with `TZ=UTC`: nft converts `meta hour` between local time and the kernel's
    /// UTC when it loads and lists, so a table listed and reloaded (a rollback) on a machine
    /// in another zone would shift its windows. vmgate's rulesets are compiled in UTC.
    fn nft(&self) -> Cmd {
        Cmd::in_netns("nft", self.netns.as_deref()).env("TZ", "UTC")
    }

    /// Asks the kernel whether the replacing transaction would load (`nft -c -f -`),
    /// without changing anything. The error carries nft's message with line and column.
    pub fn check(&self, table_text: &str) -> Result<()> {
        self.only_our_table(table_text)?;
        self.nft()
            .args(["-c", "-f", "-"])
            .run(Some(self.replace_transaction(table_text).as_bytes()))
            .map(drop)
    }

    /// Loads `table_text` in one transaction that atomically replaces our table.
    /// Text that names another table or the whole ruleset is refused before nft runs.
    /// On error the previous table stays in force, unchanged.
    pub fn load(&self, table_text: &str) -> Result<()> {
        self.only_our_table(table_text)?;
        self.nft()
            .args(["-f", "-"])
            .run(Some(self.replace_transaction(table_text).as_bytes()))
            .map(drop)
    }

    /// The live table as nft's JSON (`nft -j list table inet NAME`), or `None` when the
    /// table does not exist.
    pub fn list_json(&self) -> Result<Option<String>> {
        if !self.exists()? {
            return Ok(None);
        }
        self.nft()
            .args(["-j", "list", "table", "inet", &self.name])
            .run(None)
            .map(Some)
    }

    /// The live table in nft's own text syntax, or `None` when it does not exist.
    pub fn list_text(&self) -> Result<Option<String>> {
        if !self.exists()? {
            return Ok(None);
        }
        self.nft()
            .args(["list", "table", "inet", &self.name])
            .run(None)
            .map(Some)
    }

    /// Whether the table exists (asks for the list of `inet` tables, so it never fails
    /// just because the table is absent).
    pub fn exists(&self) -> Result<bool> {
        let listing = self.nft().args(["list", "tables", "inet"]).run(None)?;
        Ok(listing
            .lines()
            .any(|l| l.trim() == format!("table inet {}", self.name)))
    }

    /// Deletes the table; succeeds when it is already absent.
    pub fn delete(&self) -> Result<()> {
        let text = format!(
            "table inet {name} {{}}\ndelete table inet {name}\n",
            name = self.name
        );
        self.nft()
            .args(["-f", "-"])
            .run(Some(text.as_bytes()))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_restricted() {
        assert!(NftTable::new("vmgate").is_ok());
        assert!(NftTable::new("vmgt_1234_5").is_ok());
        for bad in ["", "1abc", "a b", "a;b", "a}", "x\nflush ruleset"] {
            assert!(NftTable::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_for_other_tables_is_refused() {
        let t = NftTable::new("vmgate").unwrap();
        assert!(
            t.only_our_table("table inet vmgate {\n chain c {\n }\n}")
                .is_ok()
        );
        assert!(t.only_our_table("table inet vmgate{\n}").is_ok());
        assert!(
            t.only_our_table(
                "flush set inet vmgate grants4\nadd element inet vmgate grants4 { 1 }"
            )
            .is_ok()
        );
        for bad in [
            "flush ruleset",
            "table inet filter {\n}",
            "table ip vmgate {\n}",
            "add table inet other",
            "delete table inet filter",
            "table inet vmgate2 {\n}",
            "delete chain inet filter output",
            "flush set inet other s",
        ] {
            assert!(
                matches!(t.only_our_table(bad), Err(Error::ForeignRuleset { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn replace_transaction_creates_deletes_then_defines() {
        let t = NftTable::new("vmgate").unwrap();
        assert_eq!(
            t.replace_transaction("table inet vmgate { }"),
            "table inet vmgate {}\ndelete table inet vmgate\ntable inet vmgate { }\n"
        );
    }
}
