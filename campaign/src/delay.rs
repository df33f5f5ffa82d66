//! The packet delayer behind the latency nemesis (`ha-campaign delay`, run by the campaign
//! inside the victim's namespace). This kernel has no `sch_netem`, so instead of
//! `tc qdisc add … netem delay 200ms 50ms` the victim's outgoing packets go to NFQUEUE 0
//! (an iptables rule, see [`crate::net::queue_outgoing`]) and this process hands each back
//! to the kernel (verdict "accept") after the delay plus a random jitter.
//!
//! Packets leave in the order they came (a packet is never released before the one queued
//! before it), so the jitter varies the latency without reordering TCP segments. When its
//! standard input closes, the delayer releases everything still held and exits; if it dies,
//! the rule's `--queue-bypass` lets packets through undelayed rather than dropping them.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::rng::Rng;

/// Delays every packet of NFQUEUE 0 by `delay` plus a uniform jitter in `[-jitter, jitter]`
/// until stdin closes.
pub fn run(delay: Duration, jitter: Duration, seed: u64) -> anyhow::Result<()> {
    let mut q = nfq::Queue::open().context("open the netfilter queue (needs CAP_NET_ADMIN)")?;
    q.bind(0).context("bind NFQUEUE 0")?;
    // Only the packet id is needed; copy as little of the payload as the kernel allows.
    q.set_copy_range(0, 64).context("set the copy range")?;
    q.set_fail_open(0, true).context("set fail-open")?;
    q.set_queue_max_len(0, 100_000)
        .context("set the queue length")?;
    q.set_nonblocking(true);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        s2.store(true, Ordering::SeqCst);
    });
    let mut rng = Rng::new(seed);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut last_release = Instant::now();
    let (delay_us, jitter_us) = (delay.as_micros() as i64, jitter.as_micros() as i64);
    let mut released: u64 = 0;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        loop {
            match q.recv() {
                Ok(m) => {
                    let j = if jitter_us > 0 {
                        rng.below(2 * jitter_us as u64 + 1) as i64 - jitter_us
                    } else {
                        0
                    };
                    let d = Duration::from_micros((delay_us + j).max(0) as u64);
                    let at = (Instant::now() + d).max(last_release);
                    last_release = at;
                    held.push_back((at, m));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ENOBUFS: the kernel dropped queued packets (the queue was full); TCP resends.
                Err(_) => break,
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(at, _)| stopping || *at <= now) {
            if let Some((_, mut m)) = held.pop_front() {
                m.set_verdict(nfq::Verdict::Accept);
                q.verdict(m).context("send a verdict")?;
                released += 1;
            }
        }
        if stopping && held.is_empty() {
            eprintln!("delayer: released {released} packets, exiting");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
