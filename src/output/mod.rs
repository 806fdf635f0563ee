//! Human output: the memory table, the live progress display, the end-of-sweep table and advice.

pub mod mem;
pub mod progress;
pub mod report;
