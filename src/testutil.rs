//! Test-only helpers shared by unit tests across modules.

use std::sync::{Mutex, MutexGuard};

static CHILDREN: Mutex<()> = Mutex::new(());

/// Serialises the unit tests that fork child processes. The executor reaps every child of the
/// process (`waitpid(-1)`), so a concurrent test's `Command::output()` could lose its child's
/// exit status; and a child forked by one test holds copies of every open descriptor (a sweep
/// directory's lock, say) until it execs, which another test could observe.
pub fn children() -> MutexGuard<'static, ()> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}
