//! Scheduling policy as pure functions over a snapshot of state: admission (which job may start
//! now), estimates (what a job will need, from this sweep and history), and pressure handling
//! (pause, resume, requeue). No I/O: every rule has a unit test with numbers.
