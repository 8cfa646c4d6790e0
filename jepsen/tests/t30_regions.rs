//! Two regions and a witness under region faults: the whole primary region
//! killed (the cluster fails over by itself) and brought back as an old
//! primary, then a planned failover, with the set workload at zone
//! durability. Every acknowledged add is in the final read unless a
//! returning old primary's lost-writes report lists it, nothing a report
//! lists survived, and no probe saw a discarded write after its epoch
//! ended. A report entry planted for a write that survived fails the
//! check, so the check reads the reports.

use std::path::Path;
use std::process::Command;

use cairn_jepsen::history::{self, Kind, Status};
use cairn_jepsen::region::Discarded;

const JEPSEN: &str = env!("CARGO_BIN_EXE_cairn-jepsen");

#[test]
fn t30_a_killed_primary_region_loses_only_what_it_reports() {
    let server = Path::new(JEPSEN).with_file_name("cairn-server");
    assert!(
        server.exists(),
        "{} missing: run scripts/build-jepsen first",
        server.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("regions");
    let output = Command::new(JEPSEN)
        .args(["run", "--workload", "set", "--via", "resp", "--regions", "2"])
        .args(["--nemesis", "region-kill,failover", "--nemesis-interval", "8"])
        .args(["--time", "45", "--seed", "3", "--clients", "6"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    println!("{summary}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the run failed:\n{summary}");
    assert!(summary.contains("kill region region1"), "{summary}");
    assert!(summary.contains("failover: group:default epoch:2->3"), "{summary}");
    assert!(summary.contains("failovers: 2 completed;"), "{summary}");
    assert!(out.join("discarded.json").exists());

    // Plant a report entry for an element the final read holds.
    let ops = history::load(&out.join("history.jsonl")).unwrap();
    let read = ops
        .iter()
        .rev()
        .find(|op| op.op == Kind::Read && op.status == Status::Ok)
        .expect("a final read");
    let kept = read.result.as_ref().and_then(|r| r.as_array()).unwrap()[0]
        .as_str()
        .unwrap()
        .to_string();
    let mut discarded = Discarded::load_beside(&out.join("history.jsonl")).unwrap();
    discarded.keys.insert(format!("{}:{kept}", read.key), 0);
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    std::fs::copy(out.join("history.jsonl"), tampered.join("history.jsonl")).unwrap();
    discarded.save(&tampered).unwrap();
    let check = Command::new(JEPSEN)
        .arg("check")
        .arg(tampered.join("history.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        !check.status.success(),
        "a report naming a kept write must fail:\n{stdout}"
    );
    assert!(stdout.contains(&format!("listed but kept [\"{kept}\"]")), "{stdout}");
}
