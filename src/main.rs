//! The `ssegate` binary: parse the command line and hand it to the library.

use clap::Parser;

fn main() {
    tune_allocator();
    let cli = ssegate::cli::Cli::parse();
    std::process::exit(ssegate::cli::run(cli));
}

/// glibc's malloc, left alone, raises its mmap threshold each time a large buffer is freed, so later
/// large buffers (a decoder's window, a parser's line) come from heaps that are never given back; and it
/// keeps one heap per thread that touches it. `check` frees and allocates such buffers per chain, on
/// several threads at once: a fixed threshold and two heaps keep its peak near what it holds (measured
/// in BENCHMARKS.md, "Hostile streams").
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
