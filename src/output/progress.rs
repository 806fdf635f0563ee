//! Progress while a sweep runs: a live display on a TTY, plain event lines otherwise.
