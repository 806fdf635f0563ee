//! Human output: the memory table, the live progress display, the end-of-sweep table and advice,
//! and the timeline plot.

pub mod mem;
pub mod monitor;
pub mod plot;
pub mod progress;
pub mod report;
