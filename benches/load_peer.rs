//! The peer of `ssegate load`: N concurrent streams from one process with one shared `reqwest::Client`
//! (no pooling, a fresh connection each), reading chunks and counting bytes, nothing else: what a
//! hand-written load loop costs. It prints streams, failures, wall and peak RSS per stream; it asserts
//! nothing (memory and speed goals live in BENCHMARKS.md, never in tests).
//!
//! `cargo bench --bench load_peer -- URL STREAMS RAMP_MS`, e.g. against `ssegate fixture steady`.

use std::time::{Duration, Instant};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(url) = args.first().cloned() else {
        println!("usage: cargo bench --bench load_peer -- URL STREAMS RAMP_MS");
        return;
    };
    let streams: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let ramp = Duration::from_millis(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = peak_rss_kib();
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..streams {
            tokio::time::sleep_until((start + ramp.mul_f64(i as f64 / streams as f64)).into()).await;
            let client = client.clone();
            let url = url.clone();
            set.spawn(async move {
                let mut resp = client
                    .get(&url)
                    .header("Accept", "text/event-stream")
                    .send()
                    .await
                    .map_err(|_| ())?;
                let mut bytes = 0usize;
                while let Ok(Some(c)) = resp.chunk().await {
                    bytes += c.len();
                }
                Ok::<usize, ()>(bytes)
            });
        }
        let (mut ok, mut failed) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(_)) => ok += 1,
                _ => failed += 1,
            }
        }
        let peak = peak_rss_kib();
        println!(
            "reqwest shared client: {streams} streams, {ok} ok, {failed} failed, wall {:.2} s, peak RSS {} KiB, {:.1} KiB per stream",
            start.elapsed().as_secs_f64(),
            peak,
            (peak.saturating_sub(before)) as f64 / streams as f64
        );
    });
}
