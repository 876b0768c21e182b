//! An nft table of the test's own, deleted on drop.

use vmgate_system::nft::NftTable;

use crate::unique_name;

/// A test-unique `inet` table name (`vmgtt<pid>x<n>`), optionally in a namespace; the
/// table is deleted on drop whether or not the test loaded it.
#[derive(Debug)]
pub struct TestTable(NftTable);

impl TestTable {
    /// A fresh name, in `netns` or the root namespace. Nothing is loaded yet.
    pub fn new(netns: Option<&str>) -> Self {
        let table = NftTable::new(unique_name("t")).expect("unique names are valid table names");
        TestTable(match netns {
            Some(ns) => table.in_netns(ns),
            None => table,
        })
    }
}

impl std::ops::Deref for TestTable {
    type Target = NftTable;
    fn deref(&self) -> &NftTable {
        &self.0
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        if let Err(e) = self.0.delete() {
            eprintln!("warning: could not delete nft table {}: {e}", self.0.name());
        }
    }
}
