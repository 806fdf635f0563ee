//! `memsweep check --need SIZE`: exit 0 when that much memory is available, 1 with a warning when not.
//!
//! `--json` prints `{"ok", "need_bytes", "available_bytes", "limit_bytes", "message", "status"}`;
//! `message` is the warning text (null when ok), so the Python API can log exactly what the CLI says.

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::exit::Exit;
use crate::probe::{Fs, MemStatus, Probe};
use crate::size::{SizeSpec, human};

#[derive(Debug, Serialize)]
struct Verdict<'a> {
    schema_version: u32,
    ok: bool,
    need_bytes: u64,
    available_bytes: u64,
    limit_bytes: u64,
    message: Option<String>,
    status: &'a MemStatus,
}

pub fn run(fs: &Fs, args: &CheckArgs) -> anyhow::Result<Exit> {
    let probe = Probe::new(fs.clone())?;
    let st = probe.status()?;
    for w in &st.warnings {
        crate::errln!("memsweep: warning: {w}");
    }
    let need = args.need.resolve(st.limit_bytes);
    let ok = st.available_bytes >= need;
    let message = (!ok).then(|| shortage(&st, args.need, need));
    if args.json {
        let v = Verdict {
            schema_version: crate::journal::SCHEMA_VERSION,
            ok,
            need_bytes: need,
            available_bytes: st.available_bytes,
            limit_bytes: st.limit_bytes,
            message: message.clone(),
            status: &st,
        };
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else if ok {
        crate::outln!(
            "ok: {} available, {} needed ({})",
            human(st.available_bytes),
            need_text(args.need, need),
            limit_text(&st)
        );
    }
    match message {
        None => Ok(Exit::Ok),
        Some(m) => {
            crate::errln!("memsweep: warning: {m}");
            Ok(Exit::Failed)
        }
    }
}

/// The warning: what is available, what is needed, the limit, and what to do instead.
pub fn shortage(st: &MemStatus, spec: SizeSpec, need: u64) -> String {
    format!(
        "only {} of memory is available here but {} is needed ({}). Run fewer jobs in parallel, \
         run them one after another, or start them with `memsweep run`, which admits jobs only \
         while they fit in the memory budget.",
        human(st.available_bytes),
        need_text(spec, need),
        limit_text(st)
    )
}

fn need_text(spec: SizeSpec, need: u64) -> String {
    match spec {
        SizeSpec::Percent(p) => format!("{} ({p}% of the limit)", human(need)),
        SizeSpec::Bytes(_) => human(need),
    }
}

fn limit_text(st: &MemStatus) -> String {
    match (st.cgroup_limit_bytes, st.limit_from.as_deref()) {
        (Some(l), Some(from)) if l <= st.host_total_bytes => {
            format!("limit {} from {from}", human(st.limit_bytes))
        }
        _ if st.source == "host" => format!(
            "limit {}: host RAM, no memory cgroup",
            human(st.limit_bytes)
        ),
        _ => format!(
            "limit {}: host RAM, the cgroup sets no lower limit",
            human(st.limit_bytes)
        ),
    }
}
