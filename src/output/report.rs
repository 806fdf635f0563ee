//! After a sweep: the per-job table (status, wall time, peak) and advice for the next sweep.
