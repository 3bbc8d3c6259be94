//! The workspace's crates stand on floors, and every dependency between them points down:
//! a crate uses only crates on lower floors, so the format and scoring crates never learn
//! about the models, and the models never learn about the services. A test may reach
//! sideways (a service's tests start the other service), never up.
//!
//! The floors are listed here, once; a new crate must be given one, or this test fails and
//! says so. `cargo metadata` gives the dependencies as Cargo resolves them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Floor of each workspace crate, by package name (0 is the ground floor).
const FLOORS: &[(&str, u8)] = &[
    // Formats and scoring: depend on no other crate of the workspace.
    ("shared-protocol", 0),
    ("v1-mat", 0),
    ("v1-metrics", 0),
    // pvc-1 trees and dataset building; what both services share.
    ("neural-data", 1),
    ("service-kit", 1),
    // The simulated V1, which writes pvc-1 trees.
    ("v1-sim", 2),
    // The networks (their test fixtures simulate a small V1), and NWB files of the recordings.
    ("models", 3),
    ("v1-nwb", 3),
    // What people run.
    ("v1-cli", 4),
    ("simulation-service", 4),
    ("relay-service", 4),
    ("v1-loadgen", 4),
];

/// One dependency edge between workspace crates, as `cargo metadata` reports it.
#[derive(Debug)]
struct Edge {
    from: String,
    to: String,
    /// `normal`, `dev` or `build`.
    kind: String,
}

/// The workspace's crate names and the edges between them.
fn workspace_graph() -> (Vec<String>, Vec<Edge>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("metadata has packages");
    let names: Vec<String> = packages.iter().map(|p| p["name"].as_str().expect("package name").to_owned()).collect();
    let mut edges = Vec::new();
    for p in packages {
        let from = p["name"].as_str().expect("package name");
        for d in p["dependencies"].as_array().expect("dependencies") {
            let to = d["name"].as_str().expect("dependency name");
            if names.iter().any(|n| n == to) {
                let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                edges.push(Edge { from: from.to_owned(), to: to.to_owned(), kind });
            }
        }
    }
    (names, edges)
}

/// Edges that break the floors: up (any kind), or sideways outside tests.
fn violations(floors: &HashMap<&str, u8>, edges: &[Edge]) -> Vec<String> {
    let mut bad = Vec::new();
    for e in edges {
        let (Some(&from), Some(&to)) = (floors.get(e.from.as_str()), floors.get(e.to.as_str())) else { continue };
        let allowed = if e.kind == "dev" { to <= from } else { to < from };
        if !allowed {
            bad.push(format!("{} (floor {from}) -> {} (floor {to}) as a {} dependency", e.from, e.to, e.kind));
        }
    }
    bad
}

#[test]
fn every_workspace_crate_has_a_floor_and_no_dependency_runs_back_up() {
    let floors: HashMap<&str, u8> = FLOORS.iter().copied().collect();
    let (names, edges) = workspace_graph();
    let unplaced: Vec<&String> = names.iter().filter(|n| !floors.contains_key(n.as_str())).collect();
    assert!(unplaced.is_empty(), "give these crates a floor in cli/tests/crate_graph.rs: {unplaced:?}");
    let gone: Vec<&str> = floors.keys().copied().filter(|f| !names.iter().any(|n| n == f)).collect();
    assert!(gone.is_empty(), "these crates are listed in cli/tests/crate_graph.rs but not in the workspace: {gone:?}");
    assert!(edges.len() >= names.len() - 2, "the graph was read: {} edges for {} crates", edges.len(), names.len());
    let bad = violations(&floors, &edges);
    assert!(bad.is_empty(), "dependencies that run up the floors:\n{}", bad.join("\n"));
}

#[test]
fn an_upward_or_sideways_dependency_is_reported() {
    let floors: HashMap<&str, u8> = [("low", 0), ("mid", 1), ("peer", 1), ("high", 2)].into_iter().collect();
    let edge = |from: &str, to: &str, kind: &str| Edge { from: from.into(), to: to.into(), kind: kind.into() };
    let edges = [
        edge("high", "mid", "normal"),
        edge("mid", "low", "build"),
        edge("mid", "peer", "dev"),
        edge("low", "high", "dev"),
        edge("mid", "peer", "normal"),
        edge("low", "mid", "normal"),
    ];
    let bad = violations(&floors, &edges);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].starts_with("low (floor 0) -> high (floor 2) as a dev"));
    assert!(bad[1].starts_with("mid (floor 1) -> peer (floor 1) as a normal"));
    assert!(bad[2].starts_with("low (floor 0) -> mid (floor 1) as a normal"));
}
