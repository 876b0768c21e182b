//! `timed_connects` switches the process's effective ids, so it has this binary to itself.

use std::net::SocketAddr;

use vmgate_testbed::{TestHost, TestTable, TestUser, require_root, timed_connects};

#[test]
fn e2e_timed_connects_carry_the_users_ids_into_nft() {
    require_root();
    let user = TestUser::create();
    let host = TestHost::start(&[5900]);
    let table = TestTable::new(None);
    table
        .load(&format!(
            "table inet {} {{\n chain output {{\n  type filter hook output priority filter; policy accept;\n  \
             ip daddr {} tcp dport 5900 meta skuid {} meta skgid {} reject with tcp reset\n }}\n}}",
            table.name(),
            host.v4(),
            user.uid(),
            user.gid()
        ))
        .unwrap();
    let addr = SocketAddr::new(host.v4(), 5900);

    let as_user = timed_connects(user.uid(), user.gid(), addr, 20);
    assert_eq!(
        (as_user.connected.len(), as_user.refused.len()),
        (0, 20),
        "{as_user:?}"
    );
    let as_root = timed_connects(0, 0, addr, 20);
    assert_eq!(as_root.connected.len(), 20, "{as_root:?}");
    assert!(as_root.median_connected().unwrap() > std::time::Duration::ZERO);
    assert!(nix::unistd::geteuid().is_root() && nix::unistd::getegid().as_raw() == 0);
}
