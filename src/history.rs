//! Memory history of earlier sweeps (`$XDG_CACHE_HOME/memsweep`, else `~/.cache/memsweep`):
//! each finished job's peak and wall time, keyed by its exact command and grouped by template,
//! so a rerun predicts each job's own peak and a new job of a known sweep starts from its siblings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One finished job as remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub template: String,
    pub key: String,
    pub peak_bytes: u64,
    pub wall_s: f64,
    /// Seconds since the epoch.
    pub t: f64,
}

/// The history store.
pub struct History {
    path: PathBuf,
}

impl History {
    /// Open the default store (None if no cache directory can be found or created).
    pub fn open_default() -> Option<History> {
        todo!("journal helper")
    }

    pub fn open(path: PathBuf) -> History {
        History { path }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Records for these jobs' keys and this template (most recent last).
    pub fn load(&self, template: &str) -> anyhow::Result<Vec<Record>> {
        let _ = template;
        todo!("journal helper")
    }

    /// Append finished jobs (one locked append; safe with concurrent sweeps).
    pub fn append(&self, records: &[Record]) -> anyhow::Result<()> {
        let _ = records;
        todo!("journal helper")
    }
}
