//! Checks that the grading supervisor judges misbehaving checks correctly.
//!
//! This executable plays both parts. Started by `cargo test`, it starts
//! itself again as a grading suite of checks that misbehave on purpose
//! (they exit early, abort, loop, forge output, leave processes behind),
//! reads that suite's JSON events, and asserts how each check was judged.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use testkit::grading::{Check, Suite};
use testkit::report::{CheckResult, Event, Outcome};
use testkit::secret::Secret;

/// Environment variable that makes this executable act as the suite.
const SUITE_VAR: &str = "DEFENCES_SUITE";

fn main() -> ExitCode {
    if std::env::var_os(SUITE_VAR).is_some() || std::env::var_os("WORKBOOK_CHECK").is_some() {
        return suite().run();
    }
    match judge_suite() {
        Ok(count) => {
            println!("test result: ok. {count} passed; 0 failed");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            // Both streams carry the reason, so a log that keeps only one
            // still shows it.
            eprintln!("defences: {problem}");
            println!("defences: {problem}");
            println!("test result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn suite() -> Suite {
    // "skeleton" grades checks alone: no learner tests, no stored results.
    Suite::new("defences", env!("CARGO_MANIFEST_DIR"), "skeleton")
        .check("passes", "nothing", || {})
        .check("panics", "nothing", || panic!("boom from the check"))
        .check("exits_early", "exit", || std::process::exit(0))
        .check("aborts", "abort", || std::process::abort())
        .add_check(
            Check::new("loops", "a loop", || {
                loop {
                    std::hint::spin_loop();
                }
            })
            .time_limit(Duration::from_secs(1))
            .timeout_cause("the loop never ends"),
        )
        .check("prints_fake_pass", "output", || {
            println!("test prints_fake_pass ... ok");
            println!("0123456789abcdef0123456789abcdef {{\"passed\":true,\"message\":null}}");
            std::process::exit(0);
        })
        .check("prints_a_lot_then_passes", "output", || {
            let line = "x".repeat(1023);
            for _ in 0..1024 {
                println!("{line}");
            }
        })
        .check("leaves_process_holding_pipe", "processes", || {
            // The helper inherits the check's output pipes and outlives it,
            // which is the point, so it is never waited for.
            #[allow(clippy::zombie_processes)]
            Command::new("sleep")
                .arg("300")
                .spawn()
                .expect("sleep starts");
        })
        .check("overflows_stack", "recursion", || {
            fn deeper(depth: u64) -> u64 {
                if depth == u64::MAX {
                    return 0;
                }
                let padding = std::hint::black_box([depth; 64]);
                deeper(depth + 1) + padding[0]
            }
            let _ = deeper(0);
        })
        .check("panics_with_escape_codes", "output", || {
            panic!("\u{1b}[2Jcleared")
        })
        .check("writes_partial_line_to_supervisor_output", "output", || {
            // A line left open would swallow the token of the next event,
            // which is this check's own result.
            let parent = std::os::unix::process::parent_id();
            let path = format!("/proc/{parent}/fd/1");
            if let Ok(mut output) = std::fs::OpenOptions::new().write(true).open(path) {
                let _ = output.write_all(b"unfinished line without a newline ");
            }
        })
        .check("writes_to_supervisor_output", "output", || {
            let parent = std::os::unix::process::parent_id();
            let forged = r#"{"event":"plan","checks":99}"#;
            let path = format!("/proc/{parent}/fd/1");
            if let Ok(mut output) = std::fs::OpenOptions::new().write(true).open(path) {
                let _ = writeln!(output, "{forged}");
            }
        })
}

fn judge_suite() -> Result<usize, String> {
    let token = Secret::fresh();
    let started = Instant::now();
    let executable = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut child = Command::new(executable)
        .args(["--format", "json"])
        .env(SUITE_VAR, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("the suite did not start: {err}"))?;
    let mut stdin = child.stdin.take().ok_or("the suite has no stdin")?;
    writeln!(stdin, "{}", token.reveal()).map_err(|err| err.to_string())?;
    drop(stdin);
    let mut output = String::new();
    let mut stdout = child.stdout.take().ok_or("the suite has no stdout")?;
    stdout
        .read_to_string(&mut output)
        .map_err(|err| err.to_string())?;
    child.wait().map_err(|err| err.to_string())?;
    let elapsed = started.elapsed();

    let mut plans = Vec::new();
    let mut checks: BTreeMap<String, CheckResult> = BTreeMap::new();
    for line in output.lines() {
        let Some(event) = token.strip(line) else {
            continue;
        };
        match serde_json::from_str::<Event>(event).map_err(|err| err.to_string())? {
            Event::Plan { checks } => plans.push(checks),
            Event::Check(check) => {
                checks.insert(check.name.clone(), check);
            }
            Event::Stage { .. } | Event::Task(_) => {}
        }
    }

    let expect = |name: &str, outcome: Outcome, fragment: &str| -> Result<(), String> {
        let check = checks.get(name).ok_or(format!("no result for {name}"))?;
        let message = check.message.clone().unwrap_or_default();
        if check.outcome != outcome {
            let actual = check.outcome;
            return Err(format!(
                "{name}: expected {outcome:?}, got {actual:?}: {message}"
            ));
        }
        if !message.contains(fragment) {
            return Err(format!("{name}: message lacks {fragment:?}: {message}"));
        }
        Ok(())
    };
    expect("passes", Outcome::Passed, "")?;
    expect("panics", Outcome::Failed, "boom from the check")?;
    expect("exits_early", Outcome::Crashed, "exited with status 0")?;
    expect("aborts", Outcome::Crashed, "signal 6")?;
    expect(
        "loops",
        Outcome::TimedOut,
        "timed out after 1 s — the loop never ends",
    )?;
    expect("prints_fake_pass", Outcome::Crashed, "exited with status 0")?;
    expect("prints_a_lot_then_passes", Outcome::Passed, "")?;
    expect("leaves_process_holding_pipe", Outcome::Passed, "")?;
    expect("overflows_stack", Outcome::Crashed, "overflowed its stack")?;
    expect("panics_with_escape_codes", Outcome::Failed, "cleared")?;
    expect("writes_to_supervisor_output", Outcome::Passed, "")?;
    expect(
        "writes_partial_line_to_supervisor_output",
        Outcome::Passed,
        "",
    )?;

    let escaped = checks["panics_with_escape_codes"]
        .message
        .clone()
        .unwrap_or_default();
    if escaped.contains('\u{1b}') {
        return Err(format!("an escape code reached the message: {escaped:?}"));
    }
    // The forged plan line lacks the token, so only the real plan counts.
    if plans != [12] {
        return Err(format!("expected one plan of 12 checks, got {plans:?}"));
    }
    // The helper process sleeps 300 s; the run must not wait for it. The
    // bound leaves room for a loaded machine, where the 12 checks take far
    // longer than their usual few seconds.
    if elapsed > Duration::from_secs(150) {
        return Err(format!(
            "the suite took {elapsed:?}; a leftover process held it up"
        ));
    }
    Ok(checks.len())
}
