//! `memsweep show DIR` on real sweep directories: the table and advice, `--json` against the
//! runner's own summary.json, the `--svg` timeline, a crashed sweep (torn journal), a sweep
//! still running (show must not disturb it), and bad input.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Output, ms, poll, tempdir};

const MIB: u64 = 1 << 20;

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A real sweep of 4 python jobs holding 50–100 MiB for half a second, in `dir/sw`.
fn four_job_sweep(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("sw");
    ms(["run", "-j", "2", "--out"])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
        .args([
            "-p",
            "mb=50,70,90,100",
            "--",
            "python3",
            "-c",
            "import time; b = b'x' * ({mb} << 20); time.sleep(0.5)",
        ])
        .run()
        .assert_code(0);
    out
}

fn show(args: &[&str], dir: &Path) -> Output {
    ms(["show"]).args(args).arg(dir).run()
}

/// A small structural check that `text` is well-formed XML: every element closed in order,
/// quotes balanced inside tags, `&` only in entities. Returns the element names in order.
fn xml_elements(text: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let end = after.find('>').expect("an unclosed tag");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('?') || tag.starts_with("!--") {
            continue;
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "</{name}> closes the wrong element"
            );
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap()
            .to_string();
        assert!(!name.is_empty(), "an empty tag name in <{tag}>");
        names.push(name.clone());
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    for (i, _) in text.match_indices('&') {
        let ent = &text[i..text.len().min(i + 7)];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| ent.starts_with(e)),
            "a bare & at {ent:?}"
        );
    }
    names
}

#[test]
fn show_prints_the_table_json_and_svg_of_a_finished_sweep() {
    let dir = tempdir();
    let out = four_job_sweep(dir.path());

    let res = show(&[], &out);
    res.assert_code(0).assert_no_panic();
    assert!(
        res.stdout
            .contains("state       complete: 4 of 4 succeeded"),
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains("cgroup-v1") || res.stdout.contains("proc"));
    for mb in [50, 70, 90, 100] {
        let row = res
            .stdout
            .lines()
            .find(|l| l.contains(&format!("({mb} << 20)")))
            .unwrap_or_else(|| panic!("no row for the {mb} MiB job:\n{}", res.stdout));
        assert!(row.contains("succeeded"), "{row}");
    }
    assert!(res.stdout.contains("safe parallelism"), "{}", res.stdout);

    // --json is the runner's summary.json, refolded from the journal.
    let shown = show(&["--json"], &out).assert_code(0).json();
    let saved = read_json(&out.join("summary.json"));
    let jobs = |v: &serde_json::Value| -> Vec<(String, u64)> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    j["status"].as_str().unwrap().to_string(),
                    j["peak_bytes"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(jobs(&shown), jobs(&saved), "{shown}\n{saved}");
    for (j, (_, peak)) in jobs(&shown).iter().enumerate() {
        let want = [50, 70, 90, 100][j] * MIB;
        assert!(*peak >= want, "job {j}: peak {peak} below {want}");
    }
    assert_eq!(shown["succeeded"], 4);
    assert_eq!(shown["budget_bytes"], saved["budget_bytes"]);

    // --svg: a well-formed document with a lane per job, the budget and the working set.
    let svg_path = dir.path().join("plot.svg");
    let res = ms(["show", "--svg"]).arg(&svg_path).arg(&out).run();
    res.assert_code(0);
    assert!(res.stdout.contains("complete"), "the table still prints");
    let svg = std::fs::read_to_string(&svg_path).expect("the plot was written");
    let names = xml_elements(&svg);
    assert_eq!(names.first().map(String::as_str), Some("svg"));
    assert_eq!(
        svg.matches(r#"<g class="lane""#).count(),
        4,
        "one lane per job"
    );
    for j in 0..4 {
        assert!(
            svg.contains(&format!(r#"data-job="{j}""#)),
            "no lane for job {j}"
        );
    }
    // The budget is drawn, or named above the chart when it is far above the data (a big
    // machine's budget would squash four small jobs to the bottom of the chart).
    assert!(
        svg.contains(r#"<line class="budget""#)
            || (svg.contains("budget ") && svg.contains("(above this scale)")),
        "no budget line"
    );
    assert!(
        svg.contains(r#"class="working-set""#),
        "no working set line"
    );
    assert!(
        svg.contains("all 4 succeeded"),
        "the title says the outcome"
    );
    assert_eq!(
        svg.matches("job 0: succeeded").count(),
        1,
        "job 0's one attempt is a bar"
    );
}

#[test]
fn a_crashed_sweep_with_a_torn_journal_shows_as_interrupted() {
    let dir = tempdir();
    let out = four_job_sweep(dir.path());
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for f in ["sweep.json", "summary.json"] {
        std::fs::copy(out.join(f), crashed.join(f)).unwrap();
    }
    // Cut the journal in the middle of the last job's end: the runner died writing it.
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let at = journal
        .rfind(r#"{"event":"job_end","#)
        .expect("a job_end in the journal");
    let last: serde_json::Value =
        serde_json::from_str(journal[at..].lines().next().unwrap()).unwrap();
    let last = last["job"].as_u64().unwrap() as usize;
    std::fs::write(crashed.join("journal.jsonl"), &journal[..at + 30]).unwrap();

    let res = show(&[], &crashed);
    res.assert_code(0).assert_no_panic();
    assert!(
        res.stdout
            .contains("interrupted: the runner stopped without ending the sweep"),
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains("cut short"), "{}", res.stdout);
    assert!(
        res.stdout
            .contains(&format!("memsweep run --resume {}", crashed.display())),
        "the advice says how to finish:\n{}",
        res.stdout
    );

    // The summary comes from the journal, not from the (complete) summary.json beside it.
    let s = show(&["--json"], &crashed).assert_code(0).json();
    let statuses: Vec<&str> = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    for (j, st) in statuses.iter().enumerate() {
        let want = if j == last {
            "interrupted"
        } else {
            "succeeded"
        };
        assert_eq!(*st, want, "job {j} (job {last} died with the runner): {s}");
    }

    let svg_path = dir.path().join("crashed.svg");
    ms(["show", "--svg"])
        .arg(&svg_path)
        .arg(&crashed)
        .run()
        .assert_code(0);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    xml_elements(&svg);
    assert!(svg.contains("interrupted, 3 of 4 succeeded"), "title");
}

#[test]
fn show_reads_a_running_sweep_without_disturbing_it() {
    let dir = tempdir();
    let out = dir.path().join("sw");
    let mut runner = ms(["run", "-j", "1", "--mem-per-job", "10M", "--out"])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["-p", "s=1.5,1.6", "--", "sleep", "{s}"])
        .command();
    runner.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runner = runner.spawn().unwrap();
    let started = poll(Duration::from_secs(30), || {
        std::fs::read_to_string(out.join("journal.jsonl"))
            .ok()
            .filter(|j| j.contains(r#""event":"job_start""#))
    });
    assert!(started.is_some(), "the sweep did not start within 30 s");

    let res = show(&[], &out);
    res.assert_code(0);
    assert!(
        res.stdout
            .contains(&format!("still running (runner pid {})", runner.id())),
        "{}",
        res.stdout
    );
    assert!(
        res.stdout.lines().any(|l| l.starts_with(" 0  running")),
        "job 0 shows as running:\n{}",
        res.stdout
    );
    assert!(
        !res.stdout.contains("--resume"),
        "no resume advice while a runner holds the directory:\n{}",
        res.stdout
    );
    let svg_path = dir.path().join("live.svg");
    ms(["show", "--svg"])
        .arg(&svg_path)
        .arg(&out)
        .run()
        .assert_code(0);
    assert!(
        std::fs::read_to_string(&svg_path)
            .unwrap()
            .contains("still running")
    );

    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the runner was disturbed");
    let res = show(&[], &out);
    assert!(
        res.stdout.contains("complete: 2 of 2 succeeded"),
        "{}",
        res.stdout
    );
}

#[test]
fn bad_directories_and_svg_paths_are_usage_errors_naming_them() {
    let dir = tempdir();
    let missing = dir.path().join("nope");
    let res = show(&[], &missing);
    res.assert_code(2);
    assert!(
        res.stderr.contains(&missing.display().to_string()),
        "{}",
        res.stderr
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let res = show(&[], &empty);
    res.assert_code(2);
    assert!(
        res.stderr.contains(&empty.display().to_string()) && res.stderr.contains("sweep.json"),
        "names DIR and what is missing: {}",
        res.stderr
    );

    std::fs::write(empty.join("sweep.json"), "{\"jobs\": 1}").unwrap();
    let res = show(&["--json"], &empty);
    res.assert_code(2);
    assert!(res.stderr.contains("sweep.json"), "{}", res.stderr);
    assert!(!res.stderr.contains("panicked"));

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    show(&[], &file).assert_code(2);

    let out = dir.path().join("sw");
    ms(["run", "--mem-per-job", "1M", "--out"])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["--", "true"])
        .run()
        .assert_code(0);
    let bad_svg = dir.path().join("no/such/dir/plot.svg");
    let res = ms(["show", "--svg"]).arg(&bad_svg).arg(&out).run();
    res.assert_code(2);
    assert!(
        res.stderr.contains(&format!("--svg {}", bad_svg.display())),
        "{}",
        res.stderr
    );
}

/// Headless Chromium (Debian's `chromium`, installed by scripts/setup), or why not.
fn chromium() -> Result<std::path::PathBuf, String> {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err("chromium is not installed (scripts/setup installs it)".into())
}

/// Pixels of `png` whose colour is within a small distance of `#rrggbb`.
fn count_colour(img: &(Vec<u8>, u32, u32, usize), hex: &str) -> usize {
    let c = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    let want = [
        (c >> 16) as i32 & 255,
        (c >> 8) as i32 & 255,
        c as i32 & 255,
    ];
    img.0
        .chunks(img.3)
        .filter(|p| (0..3).all(|i| (p[i] as i32 - want[i]).abs() <= 6))
        .count()
}

#[test]
fn the_svg_renders_in_a_browser_with_each_status_in_its_colour() {
    let chrome = match chromium() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED {}: {why}", module_path!());
            return;
        }
    };
    let dir = tempdir();
    let out = dir.path().join("sw");
    ms(["run", "-j", "2", "--no-history", "--out"])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["-p", "code=0,0,3", "--", "python3", "-c"])
        .arg("import sys, time; b = b'x' * (60 << 20); time.sleep(1.5); sys.exit({code})")
        .run()
        .assert_code(1);
    let svg = dir.path().join("t.svg");
    show(&["--svg", svg.to_str().unwrap()], &out).assert_code(0);
    let png = dir.path().join("t.png");
    let res = std::process::Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,800",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("chrome").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", svg.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1100, 800));
    let img = (buf, info.width, info.height, info.color_type.samples());
    // The browser drew the document (an SVG it cannot parse renders as an error page instead):
    // green bars for the two jobs that succeeded, red for the one that failed, the working-set
    // line, and the job bands of the memory chart.
    let green = count_colour(&img, "#3a9a5b");
    let red = count_colour(&img, "#d64541");
    assert!(green > 2000, "succeeded bars: {green} px");
    assert!(red > 800, "failed bar: {red} px");
    assert!(count_colour(&img, "#222222") > 200, "working-set line");
    assert!(count_colour(&img, "#8dd3c7") > 200, "job 0's memory band");
    let white = count_colour(&img, "#ffffff");
    assert!(
        white < (1100 * 800) * 95 / 100,
        "mostly blank: {white} white px"
    );
}
