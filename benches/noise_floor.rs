//! The measurement noise floor: per-event latency of the `plain` fixture probed directly on loopback, in
//! one process (send instant and arrival instant off one monotonic clock).
//!
//! `cargo bench --bench noise_floor` prints p50/p99/max over RUNS × EVENTS events, and the same with a
//! stock nginx in front when nginx is installed (`proxy_buffering off`, so only the hop's own cost shows).
//! It prints figures; it asserts nothing (timing goals never live in tests).

use std::time::Duration;

use ssegate::intermediary::HopSpec;
use ssegate::origin::Profile;
use ssegate::request::RequestSpec;
use ssegate::runner::run_scenario;

const RUNS: usize = 5;
const EVENTS: u32 = 40;
const GAP_MS: u64 = 50;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(label: &str, chain: &[HopSpec]) {
    let mut profile = Profile::builtin("plain").expect("plain profile");
    profile.events.count = EVENTS;
    profile.events.gap_ms = GAP_MS;
    let mut lat = Vec::new();
    let mut headers = Vec::new();
    for _ in 0..RUNS {
        match run_scenario(&profile, chain, &RequestSpec::default(), &[]).await {
            Ok(m) => {
                let v = m.verdict;
                lat.extend(v.events.iter().filter_map(|e| e.latency));
                headers.extend(v.header_latency);
            }
            Err(e) => {
                println!("{label:<28} skipped: {}", ssegate::error::error_chain(&e));
                return;
            }
        }
    }
    lat.sort();
    headers.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{label:<28} events {:>4}  p50 {:>8.0} µs  p99 {:>8.0} µs  max {:>8.0} µs  | headers p50 {:>7.0} µs",
        lat.len(),
        us(pct(&lat, 0.5)),
        us(pct(&lat, 0.99)),
        us(*lat.last().unwrap_or(&Duration::ZERO)),
        us(pct(&headers, 0.5)),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!(
            "per-event latency (arrival − send), {RUNS} runs × {EVENTS} events, {GAP_MS} ms apart"
        );
        measure("plain, direct", &[]).await;
        measure(
            "plain, nginx unbuffered",
            &[HopSpec::real("nginx", "unbuffered").expect("nginx has an unbuffered config")],
        )
        .await;
        measure(
            "plain, built-in passthrough",
            &[HopSpec::from(
                ssegate::intermediary::builtin::Headers::default(),
            )],
        )
        .await;
    });
}
