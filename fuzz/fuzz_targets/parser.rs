//! The SSE parser on arbitrary bytes: never panics, gives the same items and facts however the input is
//! split, and keeps at most the line limit of any line or event's data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssegate::sse::{Item, Parser};

fn parse(input: &[u8], cuts: &[usize], max_line: usize) -> (Vec<Item>, ssegate::sse::FramingFacts) {
    let mut p = Parser::with_max_line(max_line);
    let mut items = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.clamp(at, input.len());
        p.feed(&input[at..c], &mut items);
        at = c;
    }
    p.feed(&input[at..], &mut items);
    p.finish(&mut items);
    (items, p.facts().clone())
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose a line limit and a split point; the rest is the stream.
    let (max_line, cut, input) = match data {
        [a, b, rest @ ..] => (
            usize::from(*a) * 4,
            usize::from(*b) * rest.len() / 256,
            rest,
        ),
        _ => (64, 0, data),
    };
    let whole = parse(input, &[], max_line);
    let split = parse(input, &[cut], max_line);
    assert_eq!(whole, split, "splitting the input changed what was parsed");
    let kept = max_line.max(ssegate::sse::MIN_KEPT);
    for item in &whole.0 {
        if let Item::Event(e) = item {
            assert!(e.data.len() <= kept, "kept {} bytes of data", e.data.len());
        }
    }
});
