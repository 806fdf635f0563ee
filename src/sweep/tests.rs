//! Unit tests of the sweep plan: parameters, templates, jobs files, spec files and planning.

use super::*;
use crate::cli::RunArgs;
use crate::exit::UsageError;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn args(params: &[&str], cmd: &[&str]) -> RunArgs {
    RunArgs {
        params: s(params),
        command: s(cmd),
        ..RunArgs::default()
    }
}

/// Plans from flags, as `memsweep run` does (through `Request::from`).
fn plan_in(a: &RunArgs, cwd: &Path) -> anyhow::Result<SweepPlan> {
    plan_with(&a.into(), cwd, &mut std::io::empty())
}

/// The usage error's message; panics if planning succeeded or failed some other way.
fn usage_err(a: &RunArgs, cwd: &Path) -> String {
    let e = plan_in(a, cwd).expect_err("should be a usage error");
    e.downcast_ref::<UsageError>()
        .unwrap_or_else(|| panic!("not a UsageError: {e}"))
        .to_string()
}

fn argv_of(j: &Job) -> &[String] {
    match &j.command {
        JobCommand::Argv(a) => a,
        JobCommand::Shell(s) => panic!("expected argv, got shell {s}"),
    }
}

#[test]
fn sweep_json_of_earlier_versions_still_loads_and_new_sizes_are_snake_case() {
    // As written before schema_version, the job controls and snake_case sizes existed.
    let old = r#"{"jobs":[{"id":0,"command":{"argv":["true"]},"params":[],"key":"true"}],
        "config":{"jobs":null,"limit":null,"reserve":{"Percent":10.0},
        "mem_per_job":{"Bytes":1048576},"job_mem_max":null,"history":true,"cgroups":true,
        "on_pressure":"pause","retries":3,"out":null,"json":false,"grace_s":10.0,
        "sample_interval_s":0.2,"dry_run":false},"template":"true"}"#;
    let p: SweepPlan = serde_json::from_str(old).unwrap();
    assert_eq!(p.config.reserve, Some(SizeSpec::Percent(10.0)));
    assert_eq!(p.config.mem_per_job, Some(SizeSpec::Bytes(1 << 20)));
    assert_eq!((p.config.timeout_s, p.config.fail_fast), (None, false));
    assert_eq!(p.schema_version, crate::journal::SCHEMA_VERSION);
    let new = serde_json::to_string(&p).unwrap();
    assert!(new.contains(r#""reserve":{"percent":10.0}"#), "{new}");
    assert!(new.contains(r#""mem_per_job":{"bytes":1048576}"#), "{new}");
    assert!(new.starts_with(r#"{"schema_version":1,"#), "{new}");
    assert_eq!(serde_json::from_str::<SweepPlan>(&new).unwrap(), p);
}

#[test]
fn cartesian_product_in_flag_order_first_slowest() {
    let a = args(
        &["lr=0.1,0.01", "seed=range(0,3)"],
        &["python", "train.py", "--lr", "{lr}", "--seed={seed}"],
    );
    let p = plan_in(&a, Path::new(".")).unwrap();
    let got: Vec<(usize, String, String)> = p
        .jobs
        .to_vec()
        .iter()
        .map(|j| (j.id, argv_of(j)[3].clone(), argv_of(j)[4].clone()))
        .collect();
    let want: Vec<(usize, String, String)> = [
        ("0.1", "0"),
        ("0.1", "1"),
        ("0.1", "2"),
        ("0.01", "0"),
        ("0.01", "1"),
        ("0.01", "2"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (lr, seed))| (i, lr.to_string(), format!("--seed={seed}")))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        p.jobs.to_vec()[4].params,
        [("lr".into(), "0.01".into()), ("seed".into(), "1".into())]
    );
    assert_eq!(p.jobs.at(4).key(), "python train.py --lr 0.01 --seed=1");
    assert_eq!(p.template, "python train.py --lr {lr} --seed={seed}");
}

#[test]
fn parameters_order_the_product_even_if_placeholders_appear_in_another_order() {
    let a = args(&["b=1,2", "a=x,y"], &["echo", "{a}", "{b}"]);
    let p = plan_in(&a, Path::new(".")).unwrap();
    let keys: Vec<String> = p.jobs.iter().map(|j| j.key().into_owned()).collect();
    assert_eq!(keys, ["echo x 1", "echo y 1", "echo x 2", "echo y 2"]);
    assert_eq!(p.jobs.to_vec()[1].params[0], ("b".into(), "1".into()));
}

#[test]
fn hostile_value_stays_one_literal_argument() {
    let evil = "'; rm -rf x'";
    let a = args(
        &[&format!("name={evil}")],
        &["echo", "--name={name}", "{name}"],
    );
    let p = plan_in(&a, Path::new(".")).unwrap();
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(
        argv_of(&p.jobs.to_vec()[0]),
        s(&["echo", &format!("--name={evil}"), evil])
    );
    // The displayed key pastes back into a shell as the same three words.
    assert_eq!(
        quote::tests::sh_words(&p.jobs.at(0).key()),
        s(&["echo", &format!("--name={evil}"), evil])
    );
}

#[test]
fn hostile_value_stays_one_word_under_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "keep").unwrap();
    let evil = "'; rm -rf x'";
    let mut a = args(
        &[&format!("v={evil},$(rm x),a b")],
        &["printf", "'%s\\n'", "{v}", ">>", "out.txt"],
    );
    a.shell = true;
    let p = plan_in(&a, dir.path()).unwrap();
    assert_eq!(p.template, "printf '%s\\n' {v} >> out.txt");
    for j in &p.jobs.to_vec() {
        let JobCommand::Shell(script) = &j.command else {
            panic!("expected shell")
        };
        let _children = crate::testutil::children();
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        format!("{evil}\n$(rm x)\na b\n")
    );
    assert!(dir.path().join("x").exists(), "the value ran as a command");
}

#[test]
fn template_errors_name_the_flag_and_fix() {
    let cwd = Path::new(".");
    for (a, needles) in [
        (
            args(&["lr=1"], &["t", "{lr}", "{seed}"]),
            &[
                "the command after --: uses {seed}",
                "add -p seed=VALUES",
                "parameters given: lr",
            ][..],
        ),
        (
            args(&["lr=1", "seed=1,2"], &["t", "{lr}"]),
            &[
                "-p 'seed=1,2': the command has no {seed} placeholder",
                "2 value(s)",
            ][..],
        ),
        (
            args(&["lr=1", "lr=2"], &["t", "{lr}"]),
            &["-p 'lr=2': parameter lr is already given by -p 'lr=1'"][..],
        ),
        (
            args(&["lr"], &["t", "{lr}"]),
            &["-p 'lr': expected NAME=VALUES"][..],
        ),
        (
            args(&["lr="], &["t", "{lr}"]),
            &["-p 'lr=': the value list is empty"][..],
        ),
        (
            args(&["s=range(0,0)"], &["t", "{s}"]),
            &["-p 's=range(0,0)': range(0,0) is empty"][..],
        ),
        (args(&["s=range(0,3,0)"], &["t", "{s}"]), &["step is 0"][..]),
        (
            args(&[], &["t", "{lr"]),
            &["the command after --: argument 2 '{lr'"][..],
        ),
        (args(&[], &[]), &["nothing to run"][..]),
    ] {
        let e = usage_err(&a, cwd);
        for n in needles {
            assert!(
                e.contains(n),
                "{:?} {:?}: {e}\n(missing {n:?})",
                a.params,
                a.command
            );
        }
    }
}

#[test]
fn option_errors_name_the_flag() {
    let cwd = Path::new(".");
    let base = || args(&[], &["true"]);
    let cases: Vec<(RunArgs, &str)> = vec![
        (
            RunArgs {
                jobs: Some(20_000),
                ..base()
            },
            "-j: 20000 jobs at once",
        ),
        (
            RunArgs {
                grace: Some(-1.0),
                ..base()
            },
            "--grace: -1",
        ),
        (
            RunArgs {
                grace: Some(f64::NAN),
                ..base()
            },
            "--grace: NaN",
        ),
        (
            RunArgs {
                sample_interval: Some(0.0),
                ..base()
            },
            "--sample-interval: 0",
        ),
        (
            RunArgs {
                sample_interval: Some(61.0),
                ..base()
            },
            "--sample-interval: 61",
        ),
        (
            RunArgs {
                retries: Some(101),
                ..base()
            },
            "--retries: 101",
        ),
        (
            RunArgs {
                limit: Some(0),
                ..base()
            },
            "--limit: 0 bytes",
        ),
        (
            RunArgs {
                name: Some(" ".into()),
                ..base()
            },
            "--name: the name is empty",
        ),
        (
            RunArgs {
                mem_per_job: Some(SizeSpec::Bytes(2 << 30)),
                job_mem_max: Some(SizeSpec::Bytes(1 << 30)),
                ..base()
            },
            "--job-mem-max (1.00 GiB) is below --mem-per-job (2.00 GiB)",
        ),
        (
            RunArgs {
                jobs_file: Some("j.txt".into()),
                ..base()
            },
            "either the command after -- or --jobs-file",
        ),
    ];
    for (a, needle) in cases {
        let e = usage_err(&a, cwd);
        assert!(e.contains(needle), "{e} (wanted {needle:?})");
    }
}

#[test]
fn defaults_and_flags() {
    let p = plan_in(&args(&[], &["true"]), Path::new(".")).unwrap();
    assert_eq!(
        p.config,
        RunConfig {
            jobs: None,
            limit: None,
            reserve: None,
            mem_per_job: None,
            job_mem_max: None,
            history: true,
            cgroups: true,
            on_pressure: OnPressure::Pause,
            retries: 3,
            out: None,
            json: false,
            grace_s: 10.0,
            sample_interval_s: 0.2,
            dry_run: false,
            backend: Backend::Local,
            slurm_args: vec![],
            best_effort: false,
            timeout_s: None,
            fail_fast: false,
            output: OutputMode::Files,
            links: Vec::new(),
        }
    );
    assert_eq!(p.jobs.len(), 1);
    let a = RunArgs {
        jobs: Some(0),
        limit: Some(1 << 30),
        reserve: Some(SizeSpec::Percent(10.0)),
        no_history: true,
        no_cgroups: true,
        on_pressure: Some(OnPressure::None),
        retries: Some(0),
        grace: Some(0.0),
        sample_interval: Some(1.0),
        json: true,
        dry_run: true,
        name: Some("mine".into()),
        ..args(&[], &["true"])
    };
    let p = plan_in(&a, Path::new(".")).unwrap();
    let c = &p.config;
    assert_eq!((c.jobs, c.limit, c.retries), (Some(0), Some(1 << 30), 0));
    assert!(!c.history && !c.cgroups && c.json && c.dry_run);
    assert_eq!((c.grace_s, c.sample_interval_s), (0.0, 1.0));
    assert_eq!(c.on_pressure, OnPressure::None);
    assert_eq!(p.template, "mine");
}

#[test]
fn jobs_file_from_path_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let text = "# sweep\necho a\n\n{\"cmd\": [\"echo\", \"b c\"], \"key\": \"k-b\", \"params\": {\"x\": \"1\"}}\n";
    std::fs::write(dir.path().join("jobs.txt"), text).unwrap();
    let a = RunArgs {
        jobs_file: Some("jobs.txt".into()),
        ..RunArgs::default()
    };
    let p = plan_in(&a, dir.path()).unwrap();
    assert_eq!(p.jobs.len(), 2);
    assert_eq!(p.jobs.at(0).command(), JobCommand::Shell("echo a".into()));
    assert_eq!(p.jobs.at(0).key(), "echo a");
    assert_eq!(p.jobs.at(1).id(), 1);
    assert_eq!(p.jobs.at(1).key(), "k-b");
    assert_eq!(p.jobs.to_vec()[1].params, [("x".into(), "1".into())]);
    let canon = std::fs::canonicalize(dir.path().join("jobs.txt")).unwrap();
    assert_eq!(p.template, format!("jobs-file:{}", canon.display()));

    let a = RunArgs {
        jobs_file: Some("-".into()),
        ..RunArgs::default()
    };
    let p = plan_with(&(&a).into(), dir.path(), &mut text.as_bytes()).unwrap();
    assert_eq!((p.jobs.len(), p.template.as_str()), (2, "jobs-file:-"));
    // JSON argv jobs without a key are keyed by their pasteable display.
    let p = plan_with(
        &(&a).into(),
        dir.path(),
        &mut &br#"{"cmd": ["echo", "b c"]}"#[..],
    )
    .unwrap();
    assert_eq!(p.jobs.at(0).key(), "echo 'b c'");

    let e = plan_with(&(&a).into(), dir.path(), &mut &b"# nothing\n\n"[..]).unwrap_err();
    assert!(e.to_string().contains("<stdin>: no jobs"), "{e}");
    let e = plan_with(&(&a).into(), dir.path(), &mut &b"echo\n{bad\n"[..]).unwrap_err();
    assert!(e.to_string().contains("<stdin>:2: invalid JSON job"), "{e}");
    let a = RunArgs {
        jobs_file: Some("missing.txt".into()),
        ..RunArgs::default()
    };
    let e = usage_err(&a, dir.path());
    assert!(
        e.contains("--jobs-file") && e.contains("missing.txt"),
        "{e}"
    );
}

#[test]
fn values_files_on_the_command_line_are_relative_to_the_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("models.txt"), "resnet\n\nvit b\n").unwrap();
    let a = args(&["m=@models.txt"], &["train", "--model", "{m}"]);
    let p = plan_in(&a, dir.path()).unwrap();
    let keys: Vec<String> = p.jobs.iter().map(|j| j.key().into_owned()).collect();
    assert_eq!(keys, ["train --model resnet", "train --model 'vit b'"]);
    let e = usage_err(&args(&["m=@nope.txt"], &["t", "{m}"]), dir.path());
    assert!(
        e.contains("-p 'm=@nope.txt': cannot read the values file"),
        "{e}"
    );
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sweep.toml")
}

#[test]
fn the_documented_example_plans() {
    let doc = include_str!("../../docs/sweep-toml.md");
    let ex = include_str!("../../examples/sweep.toml");
    assert!(
        doc.contains(ex),
        "docs/sweep-toml.md must quote examples/sweep.toml verbatim"
    );
    let a = RunArgs {
        file: Some(example()),
        ..RunArgs::default()
    };
    let p = plan_in(&a, Path::new(".")).unwrap();
    assert_eq!(p.jobs.len(), 12);
    assert_eq!(p.template, "lr-sweep");
    assert_eq!(
        p.jobs.at(0).key(),
        "python3 examples/fake_train.py --lr 0.1 --seed=0 --data data/small.csv --mem-mib 100"
    );
    assert_eq!(
        p.jobs.at(11).key(),
        "python3 examples/fake_train.py --lr 0.01 --seed=2 --data data/large.csv --mem-mib 300"
    );
    let c = &p.config;
    assert_eq!(c.jobs, Some(4));
    assert_eq!(c.reserve, Some(SizeSpec::Percent(10.0)));
    assert_eq!(c.timeout_s, Some(300.0));
    assert_eq!(c.links, [["data", "mem"]]);
    // No `out`: the default sweeps/DATE/TIME, under the current directory.
    assert_eq!(c.out, None);
}

#[test]
fn flags_override_the_file() {
    let a = RunArgs {
        file: Some(example()),
        params: s(&["seed=7", "extra=a,b"]),
        command: s(&["run", "{lr}", "{seed}", "{data}", "{mem}", "{extra}"]),
        jobs: Some(2),
        mem_per_job: Some(SizeSpec::Bytes(1 << 30)),
        name: Some("cli-name".into()),
        ..RunArgs::default()
    };
    let p = plan_in(&a, Path::new(".")).unwrap();
    // seed replaced in place (still second), extra appended (fastest), lr and data kept.
    let names: Vec<&str> = p.jobs.at(0).params().map(|(n, _)| n).collect();
    assert_eq!(names, ["lr", "seed", "data", "mem", "extra"]);
    assert_eq!(p.jobs.len(), 2 * 2 * 2);
    assert_eq!(p.jobs.at(0).key(), "run 0.1 7 data/small.csv 100 a");
    assert_eq!(p.jobs.at(1).key(), "run 0.1 7 data/small.csv 100 b");
    assert_eq!(p.config.jobs, Some(2));
    assert_eq!(p.config.mem_per_job, Some(SizeSpec::Bytes(1 << 30)));
    assert_eq!(
        p.config.reserve,
        Some(SizeSpec::Percent(10.0)),
        "kept from the file"
    );
    assert_eq!(p.template, "cli-name");

    // The file's params still have to be used by a command that replaces the file's.
    let a = RunArgs {
        file: Some(example()),
        command: s(&["run", "{lr}"]),
        ..RunArgs::default()
    };
    let e = usage_err(&a, Path::new("."));
    assert!(
        e.contains("sweep.toml:16: params.seed: the command has no {seed}"),
        "{e}"
    );
}

#[test]
fn file_shell_commands_and_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(
        &f,
        "command = \"echo {x} | cat\"\n[params]\nx = [\"a b\", 2]\n",
    )
    .unwrap();
    let a = RunArgs {
        file: Some("s.toml".into()),
        ..RunArgs::default()
    };
    let p = plan_in(&a, dir.path()).unwrap();
    assert_eq!(
        p.jobs.at(0).command(),
        JobCommand::Shell("echo 'a b' | cat".into())
    );
    assert_eq!(
        p.jobs.at(1).command(),
        JobCommand::Shell("echo 2 | cat".into())
    );
    assert_eq!(p.template, "echo {x} | cat");

    // `shell = true` joins an argv command; the CLI's --shell does the same to the CLI command.
    std::fs::write(
        &f,
        "shell = true\ncommand = [\"echo\", \"{x}\", \">\", \"o\"]\n[params]\nx = \"1\"\n",
    )
    .unwrap();
    let p = plan_in(&a, dir.path()).unwrap();
    assert_eq!(
        p.jobs.at(0).command(),
        JobCommand::Shell("echo 1 > o".into())
    );

    std::fs::write(&f, "jobs = 2\n[params]\nx = \"1,2\"\n").unwrap();
    let e = usage_err(&a, dir.path());
    assert!(e.contains("s.toml: no command"), "{e}");
    std::fs::write(&f, "\ncommand = [\"t\", \"{y}\"]\n").unwrap();
    let e = usage_err(&a, dir.path());
    assert!(e.contains("s.toml:2: command: uses {y}"), "{e}");
    assert!(e.contains("or y = ... under [params]"), "{e}");
    std::fs::write(&f, "jobs-file = \"j.txt\"\n[params]\nx = \"1,2\"\n").unwrap();
    std::fs::write(dir.path().join("j.txt"), "echo 1\n").unwrap();
    let e = usage_err(&a, dir.path());
    assert!(
        e.contains("s.toml:3: params.x: parameters fill {name} placeholders"),
        "{e}"
    );
    std::fs::write(&f, "jobs-file = \"j.txt\"\nbogus = 1\n").unwrap();
    let e = usage_err(&a, dir.path());
    assert!(e.contains("s.toml:2: unknown field `bogus`"), "{e}");
    std::fs::write(&f, "jobs-file = \"j.txt\"\njobs = 3\n").unwrap();
    let p = plan_in(&a, dir.path()).unwrap();
    assert_eq!((p.jobs.len(), p.config.jobs), (1, Some(3)));
    assert!(p.template.starts_with("jobs-file:/"), "{}", p.template);
}

#[test]
fn ten_thousand_jobs_plan_with_their_own_keys() {
    // How fast is a benchmark's business (bench/: footprint), not a timed assertion.
    let a = args(
        &["a=range(0,100)", "b=range(0,100)"],
        &["python", "train.py", "--a={a}", "--b", "{b}"],
    );
    let p = plan_in(&a, Path::new(".")).unwrap();
    assert_eq!(p.jobs.len(), 10_000);
    assert_eq!(p.jobs.at(9_999).key(), "python train.py --a=99 --b 99");
    let keys: std::collections::HashSet<String> =
        p.jobs.iter().map(|j| j.key().into_owned()).collect();
    assert_eq!(keys.len(), 10_000, "every job has its own history key");
}

#[test]
fn display_quotes_only_where_needed() {
    let c = JobCommand::Argv(s(&["python", "-c", "print(1)", "a b", ""]));
    assert_eq!(c.display(), "python -c 'print(1)' 'a b' ''");
    assert_eq!(
        JobCommand::Shell("echo $HOME | cat".into()).display(),
        "echo $HOME | cat"
    );
}
