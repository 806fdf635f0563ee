//! Human output: the memory table, the live progress display, the end-of-sweep table and advice,
//! and the timeline plot; `stdio` is the one way to write to stdout and stderr.

pub mod color;
pub mod live;
pub mod mem;
pub mod monitor;
pub mod plot;
pub mod progress;
pub mod reason;
pub mod report;
pub mod stdio;
