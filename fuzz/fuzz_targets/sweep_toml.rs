//! Any text as a sweep.toml: the loader must answer (a spec, or an error naming the file), never
//! panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data)
        && let Err(e) = memsweep::sweep::check_sweep_toml(src, Path::new("sweep.toml"))
    {
        assert!(e.starts_with("sweep.toml"), "{e}");
    }
});
