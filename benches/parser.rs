//! The SSE parser against its peers, on the same input, in one process.
//!
//! Three inputs, each fed in 4 KiB reads: many small events (about 60 bytes each: `id:`, `data:` and a
//! blank line, as a typical stream), 64 KiB events (one long data line each), and LLM token chunks
//! (OpenAI Chat Completions deltas of 60-120 bytes, no ids). Three parsers:
//! ssegate's [`Parser`] (with every framing fact), `eventsource-stream` (the most downloaded crate)
//! and `sse-stream`; the peers are driven as the streams they are, with `futures::executor`.
//!
//! `cargo bench --bench parser` prints MB/s for every parser and input, interleaved over several
//! rounds (best round kept), plus the ratios measured in that run. Timing depends on load; instruction
//! counts do not: `scripts/parser-bench.sh` runs each parser alone under `valgrind --tool=callgrind`
//! (`--only PARSER --input INPUT`) and prints instructions per byte, minus the harness's own cost
//! (`--only none`). Every parser's event count is checked against the input's, so a parser that
//! skipped work would fail loudly instead of looking fast.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use ssegate::sse::{Item, Parser};

const READ: usize = 4096;

/// The inputs: (name, bytes, events).
fn inputs() -> Vec<(&'static str, Vec<u8>, usize)> {
    let mut small = Vec::new();
    let mut n_small = 0;
    while small.len() < 8 << 20 {
        n_small += 1;
        // `id: N` + a data line padded so each event is about 60 bytes.
        let head = format!("id: {n_small}\ndata: ");
        let pad = 60usize.saturating_sub(head.len() + 3);
        small.extend_from_slice(head.as_bytes());
        small.extend(std::iter::repeat_n(b'x', pad));
        small.extend_from_slice(b"\n\n");
    }
    let mut large = Vec::new();
    let mut n_large = 0;
    while large.len() < 16 << 20 {
        n_large += 1;
        large.extend_from_slice(b"data: ");
        large.extend(std::iter::repeat_n(b'y', 64 * 1024));
        large.extend_from_slice(b"\n\n");
    }
    // LLM token chunks: OpenAI Chat Completions deltas without ids, 60-120 bytes each (the word
    // lengths vary, as tokens do), as `data: {...}` lines.
    let mut tokens = Vec::new();
    let mut n_tokens = 0usize;
    while tokens.len() < 8 << 20 {
        n_tokens += 1;
        let word = "x".repeat(1 + (n_tokens * 7919) % 48);
        let line = format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" {word}\"}}}}]}}\n\n"
        );
        tokens.extend_from_slice(line.as_bytes());
    }
    vec![
        ("small", small, n_small),
        ("64k", large, n_large),
        ("tokens", tokens, n_tokens),
    ]
}

fn reads(input: &[u8]) -> Vec<Bytes> {
    input
        .chunks(READ)
        .map(Bytes::copy_from_slice)
        .collect::<Vec<_>>()
}

/// Events each parser dispatched; each must equal the input's count.
fn ssegate(chunks: &[Bytes]) -> usize {
    let mut p = Parser::new();
    let mut items = Vec::new();
    let mut events = 0;
    for c in chunks {
        p.feed(c, &mut items);
        events += items
            .drain(..)
            .filter(|i| matches!(black_box(i), Item::Event(_)))
            .count();
    }
    p.finish(&mut items);
    events
}

fn eventsource_stream(chunks: &[Bytes]) -> usize {
    use eventsource_stream::Eventsource;
    let s = futures::stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    futures::executor::block_on(
        s.eventsource()
            .filter(|e| std::future::ready(black_box(e).is_ok()))
            .count(),
    )
}

fn sse_stream(chunks: &[Bytes]) -> usize {
    let s = futures::stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    futures::executor::block_on(
        sse_stream::SseStream::from_bytes_stream(s)
            .filter(|e| {
                std::future::ready(black_box(e).as_ref().is_ok_and(|sse| sse.data.is_some()))
            })
            .count(),
    )
}

type Run = fn(&[Bytes]) -> usize;
const PARSERS: &[(&str, Run)] = &[
    ("ssegate", ssegate),
    ("eventsource-stream", eventsource_stream),
    ("sse-stream", sse_stream),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = arg("--only");
    let input_name = arg("--input");
    let inputs = inputs();
    if let Some(only) = only {
        // One parser, one pass: what callgrind counts.
        let (_, bytes, expect) = inputs
            .iter()
            .find(|(n, _, _)| Some(*n) == input_name.as_deref())
            .expect("--input small|64k|tokens");
        let chunks = reads(bytes);
        if only == "none" {
            black_box(&chunks);
            println!("none {}", bytes.len());
            return;
        }
        let (_, run) = PARSERS
            .iter()
            .find(|(n, _)| *n == only)
            .expect("--only ssegate|eventsource-stream|sse-stream|none");
        let got = run(&chunks);
        assert_eq!(got, *expect, "{only} dispatched {got} of {expect} events");
        println!("{only} {}", bytes.len());
        return;
    }
    const ROUNDS: usize = 5;
    for (name, bytes, expect) in &inputs {
        let chunks = reads(bytes);
        let mut best = vec![f64::MAX; PARSERS.len()];
        for _ in 0..ROUNDS {
            // Interleaved: every parser once per round, so load changes hit all of them alike.
            for (i, (pname, run)) in PARSERS.iter().enumerate() {
                let t = Instant::now();
                let got = run(&chunks);
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(got, *expect, "{pname} dispatched {got} of {expect} events");
                best[i] = best[i].min(secs);
            }
        }
        let mb = bytes.len() as f64 / 1e6;
        println!(
            "{name}: {} events, {:.1} MB in {READ}-byte reads",
            expect, mb
        );
        for (i, (pname, _)) in PARSERS.iter().enumerate() {
            println!(
                "  {pname:<20} {:>8.0} MB/s   ssegate is {:.2}x as fast",
                mb / best[i],
                best[i] / best[0]
            );
        }
    }
}
