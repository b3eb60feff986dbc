//! The measurements every stdio server gets, whoever wrote it: cold start to `initialize` and to a first
//! request, and per-call latency and resident memory over one long session. The agent, the Python peer,
//! the registry peer and the pipe floor all go through these functions with the same requests, and
//! their runs are interleaved (round-robin) so that background load on the machine falls on all of
//! them alike and the ratios stay honest.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::procfs::{self, Memory};
use crate::stats::Samples;
use crate::stdio::{self, Peer};

/// How long a server may take to exit after its stdin closes before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Calls one session makes before the next session's turn.
const SESSION_BLOCK: usize = 100;

/// A request line for a given JSON-RPC id.
pub type RequestFn<'a> = &'a dyn Fn(u64) -> String;

/// A stdio server to measure: a display name and how to start it.
pub struct Server<'a> {
    pub name: &'a str,
    pub command: Box<dyn Fn() -> Command + 'a>,
}

impl Server<'_> {
    fn spawn(&self) -> anyhow::Result<Peer> {
        Ok(Peer::spawn(self.name, (self.command)())?)
    }
}

/// How many times to repeat, and how many first runs to throw away.
#[derive(Debug, Clone, Copy)]
pub struct Repeats {
    pub warmup: usize,
    pub measured: usize,
}

impl Repeats {
    fn total(self) -> usize {
        self.warmup + self.measured
    }
}

/// Cold starts: process spawn → reply to `initialize`, and → reply to the first request after it.
#[derive(Debug, Clone, Default)]
pub struct ColdStart {
    pub to_initialize: Samples,
    pub to_first_reply: Samples,
}

/// One server's cold-start series.
pub struct ColdStartPlan<'a> {
    pub server: &'a Server<'a>,
    pub first: RequestFn<'a>,
    pub repeats: Repeats,
}

/// Starts every planned server afresh, round-robin, until each has its runs. A run sends
/// `initialize`, the `initialized` notification and `first`, then closes stdin and waits for the exit.
pub fn cold_starts(plans: &[ColdStartPlan]) -> anyhow::Result<Vec<ColdStart>> {
    let mut results = vec![ColdStart::default(); plans.len()];
    let rounds = plans.iter().map(|p| p.repeats.total()).max().unwrap_or(0);
    for round in 0..rounds {
        for (plan, result) in plans.iter().zip(&mut results) {
            if round >= plan.repeats.total() {
                continue;
            }
            let started = Instant::now();
            let mut peer = plan.server.spawn()?;
            peer.send(&stdio::initialize(1))?;
            let (initialized_at, _) = peer.await_reply(1)?;
            peer.send(&stdio::initialized())?;
            peer.send(&(plan.first)(2))?;
            let (first_at, _) = peer.await_reply(2)?;
            peer.finish(EXIT_GRACE);
            if round >= plan.repeats.warmup {
                result.to_initialize.push_duration(initialized_at - started);
                result.to_first_reply.push_duration(first_at - started);
            }
        }
    }
    Ok(results)
}

/// One kind of call repeated in a long session.
pub struct Call<'a> {
    pub label: &'a str,
    pub request: RequestFn<'a>,
}

/// One server's long session: each call `repeats` times in a row, a block per call kind.
pub struct SessionPlan<'a> {
    pub server: &'a Server<'a>,
    pub calls: &'a [Call<'a>],
}

/// A long session's latencies per call and the server's memory along the way.
#[derive(Debug, Clone)]
pub struct Session {
    pub after_initialize: Memory,
    pub after_calls: Memory,
    /// Per call label: round-trip times in ms, warm-up excluded.
    pub latencies: Vec<(String, Samples)>,
    /// Memory after each call label's block of calls (a leak grows block after block).
    pub after_each: Vec<Memory>,
    /// Calls made in all, warm-up included.
    pub calls: usize,
}

/// A session in progress: where it is in its plan.
struct Running {
    peer: Peer,
    after_initialize: Memory,
    call: usize,
    done_of_call: usize,
    next_id: u64,
    latencies: Vec<(String, Samples)>,
    after_each: Vec<Memory>,
}

/// Opens every planned session (`initialize` each), then takes turns of [`SESSION_BLOCK`] calls per
/// session until all are done. Memory is read after `initialize` and after a session's last call.
pub fn sessions(plans: &[SessionPlan], repeats: Repeats) -> anyhow::Result<Vec<Session>> {
    let mut running = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut peer = plan.server.spawn()?;
        peer.call(&stdio::initialize(1), 1)?;
        peer.send(&stdio::initialized())?;
        running.push(Running {
            after_initialize: procfs::memory(peer.pid())?,
            peer,
            call: 0,
            done_of_call: 0,
            next_id: 2,
            latencies: plan
                .calls
                .iter()
                .map(|c| (c.label.to_owned(), Samples::default()))
                .collect(),
            after_each: Vec::new(),
        });
    }
    let mut finished: Vec<Option<Session>> = plans.iter().map(|_| None).collect();
    while finished.iter().any(Option::is_none) {
        for ((plan, run), slot) in plans.iter().zip(&mut running).zip(&mut finished) {
            if slot.is_some() {
                continue;
            }
            for _ in 0..SESSION_BLOCK {
                let Some(call) = plan.calls.get(run.call) else {
                    break;
                };
                let id = run.next_id;
                run.next_id += 1;
                let (elapsed, _) = run.peer.call(&(call.request)(id), id)?;
                if run.done_of_call >= repeats.warmup {
                    run.latencies[run.call].1.push_duration(elapsed);
                }
                run.done_of_call += 1;
                if run.done_of_call == repeats.total() {
                    run.after_each.push(procfs::memory(run.peer.pid())?);
                    run.call += 1;
                    run.done_of_call = 0;
                }
            }
            if run.call == plan.calls.len() {
                *slot = Some(Session {
                    after_initialize: run.after_initialize,
                    after_calls: procfs::memory(run.peer.pid())?,
                    latencies: std::mem::take(&mut run.latencies),
                    after_each: std::mem::take(&mut run.after_each),
                    calls: (run.next_id - 2) as usize,
                });
            }
        }
    }
    for run in running {
        run.peer.finish(EXIT_GRACE);
    }
    Ok(finished.into_iter().flatten().collect())
}
