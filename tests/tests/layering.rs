//! The dependency direction of the design card, checked on `cargo metadata`:
//! server → broker → {coordinator, replication} → storage, broker → protocol;
//! nothing depends on broker or server.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[test]
fn workspace_dependencies_follow_the_architecture() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("gregor-protocol", &[][..]),
        ("gregor-storage", &[][..]),
        ("gregor-coordinator", &["gregor-storage"][..]),
        ("gregor-replication", &["gregor-storage"][..]),
        (
            "gregor-broker",
            &[
                "gregor-protocol",
                "gregor-storage",
                "gregor-coordinator",
                "gregor-replication",
            ][..],
        ),
        (
            "gregor-server",
            &["gregor-broker", "gregor-storage", "gregor-protocol"][..],
        ),
        ("gregor-blackbox", &[][..]),
    ]);
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    // Minimal parse: each package object lists "name" then its "dependencies".
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pkg in text.split("{\"name\":\"").skip(1) {
        let name: String = pkg.chars().take_while(|c| *c != '"').collect();
        if !name.starts_with("gregor-") {
            continue;
        }
        let deps = pkg.split("\"dependencies\":[").nth(1).unwrap_or("");
        let deps = deps.split("\"targets\"").next().unwrap_or("");
        let set = edges.entry(name).or_default();
        for d in deps.split("\"name\":\"").skip(1) {
            let dep: String = d.chars().take_while(|c| *c != '"').collect();
            if dep.starts_with("gregor-") {
                set.insert(dep);
            }
        }
    }
    assert!(
        edges.contains_key("gregor-broker") && edges.contains_key("gregor-server"),
        "metadata not understood: {edges:?}"
    );
    for (pkg, deps) in &edges {
        let ok = allowed
            .get(pkg.as_str())
            .unwrap_or_else(|| panic!("{pkg} is not in the architecture"));
        for d in deps {
            assert!(ok.contains(&d.as_str()), "{pkg} must not depend on {d}");
        }
    }
}
