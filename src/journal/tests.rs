//! Unit tests of the sweep directory: create, lock, record/sync, resume, parse, job folders.

use super::fixtures::*;
use super::*;
use std::fs::{self, OpenOptions};
use std::io::Write;

use crate::exit::UsageError;
use crate::sweep::SweepPlan;

fn usage_msg(err: anyhow::Error) -> String {
    err.downcast_ref::<UsageError>()
        .unwrap_or_else(|| panic!("expected a usage error, got: {err:#}"))
        .to_string()
}

fn err_of<T>(r: anyhow::Result<T>) -> anyhow::Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn create_writes_the_plan_and_refuses_a_directory_that_holds_a_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/sweep");
    let plan = plan(3);
    drop(SweepDir::create(&root, &plan).unwrap());
    let back: SweepPlan = serde_json::from_slice(&fs::read(root.join(PLAN_FILE)).unwrap()).unwrap();
    assert_eq!(back, plan);
    assert!(root.join(JOURNAL_FILE).exists());

    let msg = usage_msg(err_of(SweepDir::create(&root, &plan)));
    assert!(msg.contains("already holds a sweep"), "{msg}");
    assert!(
        msg.contains(&format!("--resume {}", root.display())),
        "{msg}"
    );
}

#[test]
fn a_second_runner_is_refused_and_told_the_holders_pid() {
    // A child forked by a concurrent test would hold the lock's descriptor until it execs.
    let _children = crate::testutil::children();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let first = SweepDir::create(&root, &plan(2)).unwrap();
    let pid = std::process::id().to_string();
    assert_eq!(
        fs::read_to_string(root.join(LOCK_FILE)).unwrap().trim(),
        pid
    );

    let msg = usage_msg(err_of(SweepDir::resume(&root, false)));
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(msg.contains("in use by another memsweep runner"), "{msg}");
    // The lock is checked before "already holds a sweep": the user learns who holds it.
    let msg = usage_msg(err_of(SweepDir::create(&root, &plan(2))));
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");

    drop(first);
    let (dir, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(dir.root(), root);
    assert_eq!(state.plan, plan(2));
    assert!(state.succeeded.is_empty());
}

#[test]
fn record_buffers_until_sync_and_resume_replays_what_succeeded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let journal = root.join(JOURNAL_FILE);
    let mut dir = SweepDir::create(&root, &plan(3)).unwrap();
    for e in [
        sweep_start(100.0, false),
        start(100.5, 0, 1),
        start(100.6, 1, 1),
        start(100.7, 2, 1),
        end(102.0, 0, 1, JobStatus::Succeeded, 300 << 20),
        end(102.5, 2, 1, JobStatus::Failed, 100 << 20),
    ] {
        dir.record(&e).unwrap();
    }
    assert_eq!(
        fs::metadata(&journal).unwrap().len(),
        0,
        "nothing before sync"
    );
    dir.sync().unwrap();
    let synced = fs::read(&journal).unwrap();
    assert_eq!(synced.iter().filter(|&&b| b == b'\n').count(), 6);
    drop(dir); // the runner dies with job 1 still running

    let (mut dir, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(state.succeeded, vec![0], "job 1 never ended, job 2 failed");
    assert_eq!(state.events.len(), 6);
    let s = dir.summary(&plan(3).jobs, &ctx("s"));
    assert_eq!(s.jobs[1].status, JobStatus::Running);

    dir.record(&sweep_start(200.0, true)).unwrap();
    dir.record(&start(200.5, 1, 1)).unwrap();
    dir.sync().unwrap();
    let s = dir.summary(&plan(3).jobs, &ctx("s"));
    assert_eq!(s.jobs[1].status, JobStatus::Running);
    assert_eq!(s.jobs[1].attempts, 2, "the killed attempt counts");
    let (events, _) = parse_journal(&fs::read(&journal).unwrap(), &journal).unwrap();
    assert_eq!(events.len(), 8, "appending continues in the same journal");
    assert_eq!(events[6], sweep_start(200.0, true));
}

#[test]
fn a_torn_last_line_is_dropped_and_cut_away_before_appending() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let journal = root.join(JOURNAL_FILE);
    let mut dir = SweepDir::create(&root, &plan(2)).unwrap();
    dir.record(&sweep_start(1.0, false)).unwrap();
    dir.record(&start(1.5, 0, 1)).unwrap();
    dir.record(&end(3.0, 0, 1, JobStatus::Succeeded, 1 << 20))
        .unwrap();
    dir.sync().unwrap();
    drop(dir);
    let good = fs::metadata(&journal).unwrap().len();
    // SIGKILL in the middle of writing job 1's end.
    let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
    f.write_all(br#"{"event":"job_end","t":4.0,"job":1,"att"#)
        .unwrap();
    drop(f);

    let (mut dir, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(state.succeeded, vec![0]);
    assert_eq!(state.events.len(), 3);
    assert_eq!(fs::metadata(&journal).unwrap().len(), good);
    dir.record(&sweep_start(10.0, true)).unwrap();
    dir.sync().unwrap();
    drop(dir);
    // The next resume reads every line: no torn fragment glued to the new line.
    let (_, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(state.events.len(), 4);
}

#[test]
fn corruption_before_the_last_line_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let journal = root.join(JOURNAL_FILE);
    drop(SweepDir::create(&root, &plan(1)).unwrap());
    let line = |e: &Event| serde_json::to_string(e).unwrap() + "\n";
    let text = line(&sweep_start(1.0, false)) + "{not json\n" + &line(&start(2.0, 0, 1));
    fs::write(&journal, text).unwrap();
    let msg = usage_msg(err_of(SweepDir::resume(&root, false)));
    assert!(msg.contains(&format!("{}:2:", journal.display())), "{msg}");
    // A complete but unparsable last line (e.g. zeros after a crash) is torn, not corrupt.
    let text = line(&sweep_start(1.0, false)) + "\0\0\0\0\n";
    fs::write(&journal, text).unwrap();
    let (_, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(state.events.len(), 1);
}

#[test]
fn resume_refuses_what_is_not_a_sweep_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = usage_msg(err_of(SweepDir::resume(&tmp.path().join("missing"), false)));
    assert!(msg.contains("no such directory"), "{msg}");

    let msg = usage_msg(err_of(SweepDir::resume(tmp.path(), false)));
    assert!(msg.contains("not a memsweep sweep directory"), "{msg}");
    assert!(msg.contains("sweep.json"), "{msg}");

    fs::write(tmp.path().join(PLAN_FILE), "{\"jobs\": 3}").unwrap();
    let msg = usage_msg(err_of(SweepDir::resume(tmp.path(), false)));
    assert!(msg.contains("not a memsweep sweep directory"), "{msg}");
    assert!(
        msg.contains(&tmp.path().join(PLAN_FILE).display().to_string()),
        "{msg}"
    );
}

#[test]
fn summary_is_replaced_atomically_and_read_back_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let mut dir = SweepDir::create(&root, &plan(2)).unwrap();
    let jobs = plan(2).jobs;
    dir.record(&sweep_start(1.0, false)).unwrap();
    dir.write_summary(&dir.summary(&jobs, &ctx("s"))).unwrap();
    dir.record(&start(1.0, 0, 1)).unwrap();
    dir.record(&end(2.0, 0, 1, JobStatus::Succeeded, 5 << 20))
        .unwrap();
    dir.sync().unwrap();
    let second = dir.summary(&jobs, &ctx("s"));
    dir.write_summary(&second).unwrap();
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp")),
        "temp file left behind: {names:?}"
    );
    drop(dir);
    let (_, state) = SweepDir::resume(&root, false).unwrap();
    assert_eq!(state.previous, Some(second));
}

#[test]
fn job_dir_holds_the_command_and_names_the_output_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = SweepDir::create(tmp.path(), &plan(1)).unwrap();
    let d = dir.make_job_dir(7, "python3 train.py 'lr=0.1'").unwrap();
    assert_eq!(d, tmp.path().join("7"));
    assert_eq!(
        fs::read_to_string(d.join("command")).unwrap(),
        "python3 train.py 'lr=0.1'\n"
    );
    assert_eq!(dir.stdout_path(7), d.join("stdout"));
    assert_eq!(dir.stderr_path(7), d.join("stderr"));
}

#[test]
fn every_event_type_round_trips_through_json() {
    for e in [
        sweep_start(1.0, true),
        start(1.0, 0, 1),
        Event::JobPause {
            t: 1.0,
            job: 0,
            reason: "pressure".into(),
            usage_bytes: None,
        },
        Event::JobResume { t: 1.0, job: 0 },
        Event::JobRequeue {
            t: 1.0,
            job: 0,
            attempt: 1,
            reason: "grew".into(),
            usage_bytes: 9,
        },
        end(1.0, 0, 1, JobStatus::RequeuedOut, 1),
        sample(1.0, 5),
        sweep_end(1.0, 2.0),
    ] {
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e, "{text}");
    }
    let text = serde_json::to_string(&end(1.0, 0, 1, JobStatus::RequeuedOut, 1)).unwrap();
    assert!(text.starts_with(r#"{"event":"job_end","#), "{text}");
    assert!(text.contains(r#""status":"requeued-out""#), "{text}");
    // The Hydra launcher reads these field names and shapes: pin one line exactly.
    assert_eq!(
        serde_json::to_string(&sample(1.5, 5)).unwrap(),
        r#"{"event":"sample","t":1.5,"working_set_bytes":5,"available_bytes":1073741819,"budget_bytes":1073741824,"running":[[0,5]],"psi_some_avg10":0.5}"#
    );
}
