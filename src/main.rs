//! The `model-compose` binary: parses the command line and hands off to [`model_compose::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_allocations();
    model_compose::cli::main()
}

/// glibc's malloc serves an allocation larger than its mmap threshold with a mapping of its own,
/// returned to the system when freed, but raises that threshold each time such a block is freed
/// (up to 32 MiB): after a few large requests (a long prompt is copied several times on its way
/// upstream and into the history), large blocks come from the heap and stay there. A fixed
/// threshold keeps the server's memory where its work is.
fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of the allocator; it is called once, before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
