//! The real `agent idle` SIGKILLed while it writes: stopped between the two halves of a record and
//! killed there, and killed at random points many times. After each restart the reader and
//! `get_gpu_timeline` show every sample the killed writer had confirmed, at most the one in flight
//! lost, never a torn or corrupt record.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use agent::recorder::store::{self, Record};
use common::{Session, text_of};
use serde_json::{Value, json};

const FIXTURE: &str = "extends: healthy\n";

/// `agent idle` recording every `interval`, logging each sample it wrote.
fn recorder(dir: &Path, fixture: &Path, interval: &str, env: &[(&str, &str)]) -> Session {
    Session::start_with_env(
        &[
            "idle",
            "--nvml-mode=mock",
            "--mock-fixture",
            fixture.to_str().unwrap(),
            "--history-dir",
            dir.to_str().unwrap(),
            "--sample-interval",
            interval,
            "--log-level=warn,agent::recorder=debug",
        ],
        env,
    )
}

/// The sample times an exited recorder's log confirms as written (read until the pipe is drained).
fn confirmed(idle: &Session) -> BTreeSet<i64> {
    let mut stderr = String::new();
    let mut quiet = 0;
    while quiet < 3 {
        let more = idle.stderr();
        quiet = if more.is_empty() { quiet + 1 } else { 0 };
        stderr.push_str(&more);
        std::thread::sleep(Duration::from_millis(50));
    }
    stderr
        .lines()
        .filter(|l| l.contains("recorded a sample"))
        .filter_map(|l| {
            l.split("t=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn timeline(dir: &Path) -> Value {
    let mut s = Session::start_with_env(
        &["--nvml-mode=mock", "--log-level=warn"],
        &[("AGENT_HISTORY_DIR", dir.to_str().unwrap())],
    );
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_timeline", json!({"since_seconds": 3600}));
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

fn kinds(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect()
}

/// Samples read back, grouped by the process that wrote them (its start time).
fn samples_by_writer(dir: &Path) -> (BTreeMap<i64, Vec<i64>>, Vec<String>) {
    let read = store::read_history(dir, 0).unwrap();
    let mut by_writer: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut writer = None;
    for r in &read.raw {
        match r {
            Record::Header(h) => writer = Some(h.writer_started_ms),
            Record::Sample { t, gpus, .. } => {
                assert_eq!(gpus.len(), 8, "a sample lost GPUs");
                by_writer
                    .entry(writer.expect("a sample before any header"))
                    .or_default()
                    .push(*t);
            }
            Record::Skipped { .. } | Record::Minute(_) => {}
        }
    }
    (by_writer, read.notes)
}

/// The process state letter from `/proc/PID/stat` (`T` = stopped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_writer_killed_between_the_halves_of_a_record_loses_only_that_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("healthy.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let history = tmp.path().join("history");
    let mut idle = recorder(
        &history,
        &fixture,
        "50ms",
        &[("AGENT_HISTORY_TEST_STOP_MID_RECORD", "6")],
    );
    let pid = idle.child.id();
    wait_for("the recorder to stop mid-record", || {
        state(pid) == Some('T')
    });

    // A reader while the sixth record is half written: five samples, nothing torn, no note.
    let (by_writer, notes) = samples_by_writer(&history);
    assert_eq!(notes, Vec::<String>::new());
    let first: Vec<i64> = by_writer.values().flatten().copied().collect();
    assert_eq!(first.len(), 5, "{first:?}");
    let r = timeline(&history);
    assert_eq!(r["gpus"][0]["samples"], 5, "{}", r["gpus"][0]);
    assert_eq!(r["notes"], json!([]));

    idle.signal(libc::SIGKILL);
    idle.wait(Duration::from_secs(5)).expect("SIGKILL ends it");
    let logged = confirmed(&idle);
    assert_eq!(
        logged,
        first.iter().copied().collect::<BTreeSet<_>>(),
        "every sample the writer confirmed is on disk, and only those"
    );

    // The restart: the torn half stays in the old segment; the reader skips it with one note.
    let mut again = recorder(&history, &fixture, "50ms", &[]);
    wait_for("samples after the restart", || {
        samples_by_writer(&history).0.len() == 2
            && samples_by_writer(&history).0.values().nth(1).unwrap().len() >= 3
    });
    again.signal(libc::SIGTERM);
    again.wait(Duration::from_secs(5)).expect("SIGTERM ends it");
    let (by_writer, notes) = samples_by_writer(&history);
    assert_eq!(by_writer.values().next().unwrap(), &first);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("incomplete last record"), "{}", notes[0]);
    let total: usize = by_writer.values().map(Vec::len).sum();
    let r = timeline(&history);
    assert_eq!(r["gpus"][0]["samples"], total as u64, "{}", r["gpus"][0]);
    assert_eq!(kinds(&r["node_events"]), ["agent_restarted"], "{r}");
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .contains("incomplete last record")
    );
}

#[test]
fn random_sigkills_while_recording_lose_at_most_the_sample_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("healthy.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let history = tmp.path().join("history");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill times from seed {seed}");
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut logged = BTreeSet::new();
    let runs = 12;
    for _ in 0..runs {
        let mut idle = recorder(&history, &fixture, "10ms", &[]);
        std::thread::sleep(Duration::from_millis(60 + next() % 240));
        idle.signal(libc::SIGKILL);
        idle.wait(Duration::from_secs(5)).expect("SIGKILL ends it");
        logged.extend(confirmed(&idle));
    }
    assert!(!logged.is_empty(), "no run recorded a sample");

    let (by_writer, notes) = samples_by_writer(&history);
    for n in &notes {
        assert!(n.contains("incomplete last record"), "{n}");
    }
    let read: BTreeSet<i64> = by_writer.values().flatten().copied().collect();
    let lost: Vec<&i64> = logged.difference(&read).collect();
    assert!(lost.is_empty(), "confirmed samples missing: {lost:?}");
    for (writer, samples) in &by_writer {
        // Written but not confirmed before the kill: only the writer's last sample may be.
        let unconfirmed: Vec<usize> = samples
            .iter()
            .enumerate()
            .filter(|(_, t)| !logged.contains(t))
            .map(|(i, _)| i)
            .collect();
        assert!(
            unconfirmed.is_empty() || unconfirmed == [samples.len() - 1],
            "writer {writer}: unconfirmed samples at {unconfirmed:?} of {}",
            samples.len()
        );
    }

    let total: usize = by_writer.values().map(Vec::len).sum();
    let r = timeline(&history);
    assert_eq!(r["gpus"][0]["samples"], total as u64, "{by_writer:?}");
    let restarts = kinds(&r["node_events"])
        .iter()
        .filter(|k| **k == "agent_restarted")
        .count();
    assert_eq!(restarts, by_writer.len() - 1, "{}", r["node_events"]);
    for n in r["notes"].as_array().unwrap() {
        assert!(
            n.as_str().unwrap().contains("incomplete last record"),
            "{n}"
        );
    }
}
