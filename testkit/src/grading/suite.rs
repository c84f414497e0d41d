//! The suite of checks of one task, and the supervisor that runs it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::child::{self, CHECK_VAR, Verdict};
use super::score::score_task;
use crate::learner;
use crate::process::{describe_exit, run_limited};
use crate::report::{CheckResult, Event, LearnerStatus, LearnerTests, Outcome, TaskReport};
use crate::secret::Secret;
use crate::state::State;

/// Time a check may run before it is killed, unless it sets its own.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// One named grading check.
#[derive(Clone, Debug)]
pub struct Check {
    name: &'static str,
    subject: &'static str,
    run: fn(),
    time_limit: Duration,
    timeout_cause: Option<&'static str>,
}

impl Check {
    /// Creates a check called `name` about `subject` (the part of the API it
    /// concerns, named in timeout messages) that runs `run`.
    ///
    /// The check passes when `run` returns and fails when it panics, so its
    /// assertion messages are what the learner reads.
    pub fn new(name: &'static str, subject: &'static str, run: fn()) -> Check {
        Check {
            name,
            subject,
            run,
            time_limit: DEFAULT_TIME_LIMIT,
            timeout_cause: None,
        }
    }

    /// Sets the likely cause that a timeout message names, in place of
    /// "likely deadlock or endless loop in SUBJECT".
    ///
    /// Use it when a timeout of this check has a known typical cause, such as
    /// a publish that waits for space where the contract says it drops.
    pub fn timeout_cause(mut self, cause: &'static str) -> Check {
        self.timeout_cause = Some(cause);
        self
    }

    /// Sets the wall-clock time after which the check's process is killed.
    pub fn time_limit(mut self, limit: Duration) -> Check {
        self.time_limit = limit;
        self
    }
}

/// The grading checks of one task crate.
#[derive(Debug)]
pub struct Suite {
    package: String,
    manifest_dir: PathBuf,
    implementation: String,
    checks: Vec<Check>,
}

impl Suite {
    /// Creates an empty suite; [`crate::suite!`] fills in the arguments.
    pub fn new(package: &str, manifest_dir: &str, implementation: &str) -> Suite {
        Suite {
            package: package.to_owned(),
            manifest_dir: PathBuf::from(manifest_dir),
            implementation: implementation.to_owned(),
            checks: Vec::new(),
        }
    }

    /// Adds a check with the default time limit; see [`Check::new`].
    pub fn check(self, name: &'static str, subject: &'static str, run: fn()) -> Suite {
        self.add_check(Check::new(name, subject, run))
    }

    /// Adds a prepared check.
    ///
    /// # Panics
    ///
    /// Panics when a check of the same name is already in the suite.
    pub fn add_check(mut self, check: Check) -> Suite {
        assert!(
            self.checks
                .iter()
                .all(|existing| existing.name != check.name),
            "two checks are named {}; give each check its own name",
            check.name
        );
        self.checks.push(check);
        self
    }

    /// Runs the suite as the test executable's `main` and returns its exit code.
    ///
    /// Accepts the arguments `cargo test` passes on: name filters, `--exact`,
    /// `--list`, `--test-threads N`, and `--format json` for the workbook CLI.
    /// Other libtest flags are accepted and ignored.
    pub fn run(self) -> ExitCode {
        if let Ok(name) = std::env::var(CHECK_VAR) {
            match self.checks.iter().find(|check| check.name == name) {
                Some(check) => child::run(check.run),
                None => {
                    eprintln!("no check is named {name}; `--list` shows the names");
                    return ExitCode::from(2);
                }
            }
        }

        let options = Options::parse(std::env::args().skip(1));
        if options.list {
            for check in &self.checks {
                println!("{}: test", check.name);
            }
            return ExitCode::SUCCESS;
        }
        let selected: Vec<Check> = self
            .checks
            .iter()
            .filter(|check| options.selects(check.name))
            .cloned()
            .collect();
        let complete = selected.len() == self.checks.len();
        let token = if options.json {
            match Secret::read_from_stdin() {
                Ok(token) => Some(token),
                Err(err) => {
                    eprintln!("`--format json` needs a token on standard input: {err}");
                    return ExitCode::from(2);
                }
            }
        } else {
            None
        };
        let output = Output {
            json: options.json,
            token,
        };

        output.event(&Event::Plan {
            checks: selected.len(),
        });
        output.human(&format!(
            "\nrunning {} of {}",
            plural(selected.len(), "check"),
            self.package
        ));
        let checks = self.run_checks(&selected, options.threads, &output);

        let all_passed = checks.iter().all(|check| check.outcome == Outcome::Passed);
        let report = self.report(checks, complete, all_passed, &output);
        output.human_summary(&report);
        output.event(&Event::Task(Box::new(report.clone())));

        // Only a full run of the learner's own solution is worth remembering.
        if complete && report.implementation == "exercise" {
            if let Err(err) = self.state().store_result(&report) {
                eprintln!(
                    "warning: could not store the result in {}: {err}",
                    self.state().dir().display()
                );
            }
        }
        if all_passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    fn run_checks(&self, selected: &[Check], threads: usize, output: &Output) -> Vec<CheckResult> {
        let queue = Arc::new(Mutex::new(
            selected
                .iter()
                .cloned()
                .enumerate()
                .collect::<VecDeque<_>>(),
        ));
        let (sender, receiver) = mpsc::channel();
        let executable = std::env::current_exe().expect("a running test knows its own executable");

        let workers: Vec<_> = (0..threads.clamp(1, selected.len().max(1)))
            .map(|_| {
                let queue = Arc::clone(&queue);
                let sender = sender.clone();
                let executable = executable.clone();
                thread::spawn(move || {
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(|err| err.into_inner())
                            .pop_front();
                        let Some((index, check)) = next else { break };
                        let result = supervise(&executable, &check);
                        if sender.send((index, result)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(sender);

        let mut results: Vec<Option<CheckResult>> = vec![None; selected.len()];
        for (index, result) in receiver {
            output.check(&result);
            results[index] = Some(result);
        }
        for worker in workers {
            worker.join().expect("a supervising thread never panics");
        }
        results
            .into_iter()
            .map(|result| result.expect("every check reports once"))
            .collect()
    }

    fn report(
        &self,
        checks: Vec<CheckResult>,
        complete: bool,
        all_passed: bool,
        output: &Output,
    ) -> TaskReport {
        // Only a solution has learner tests worth running; a mutant or the
        // skeleton is graded for its checks alone.
        let solution = matches!(self.implementation.as_str(), "exercise" | "reference");
        let learner_tests = if all_passed && complete && solution {
            output.stage("running the learner tests against the solution and each mutant");
            learner::evaluate(&self.package, &self.manifest_dir, &self.implementation)
        } else {
            LearnerTests::not_run()
        };
        // The reference is graded as a learner who used no hints.
        let hints_used = match self.implementation.as_str() {
            "exercise" => self.state().hints_used(&self.package),
            _ => 0,
        };
        let (score, reason, next_step) =
            score_task(&self.package, &checks, complete, hints_used, &learner_tests);
        TaskReport {
            task: self.package.clone(),
            implementation: self.implementation.clone(),
            score,
            reason,
            next_step,
            checks_passed: checks
                .iter()
                .filter(|check| check.outcome == Outcome::Passed)
                .count(),
            checks_total: checks.len(),
            complete,
            checks,
            hints_used,
            learner_tests,
            compile_error: None,
        }
    }

    fn state(&self) -> State {
        State::for_workspace(workspace_root(&self.manifest_dir))
    }
}

/// Returns `count` and `noun`, with an "s" unless the count is one.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Returns the workspace root of a task crate: the folder that contains it.
pub(crate) fn workspace_root(manifest_dir: &Path) -> &Path {
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// Runs one check in a child process and turns how it ended into a result.
fn supervise(executable: &Path, check: &Check) -> CheckResult {
    let token = Secret::fresh();
    let mut command = Command::new(executable);
    command
        .env(CHECK_VAR, check.name)
        .env("RUST_BACKTRACE", "0");

    let (outcome, message, elapsed) = match run_limited(
        &mut command,
        format!("{}\n", token.reveal()).as_bytes(),
        check.time_limit,
    ) {
        Err(err) => (
            Outcome::Crashed,
            format!("the grader could not start the check: {err}"),
            Duration::ZERO,
        ),
        Ok(finished) => {
            let stdout = String::from_utf8_lossy(&finished.stdout);
            let verdict = find_verdict(&stdout, &token);
            let mut output = strip_verdict(&stdout, &token);
            output.push_str(&String::from_utf8_lossy(&finished.stderr));
            let (outcome, message) = judge(check, finished.status, verdict, &output);
            (outcome, printable(&message), finished.elapsed)
        }
    };
    CheckResult {
        name: check.name.to_owned(),
        subject: check.subject.to_owned(),
        outcome,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        message: (outcome != Outcome::Passed).then_some(message),
    }
}

/// Replaces control characters other than newlines and tabs, so that a
/// message from code under test cannot move the cursor or clear a terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn judge(
    check: &Check,
    status: Option<std::process::ExitStatus>,
    verdict: Option<Verdict>,
    output: &str,
) -> (Outcome, String) {
    let with_output = |text: String| {
        let trimmed = output.trim();
        if trimmed.is_empty() {
            text
        } else {
            format!("{text}\n  output of the check:\n{}", indent(trimmed))
        }
    };
    match (status, verdict) {
        (None, _) => {
            let cause = match check.timeout_cause {
                Some(cause) => cause.to_owned(),
                None => format!("likely deadlock or endless loop in {}", check.subject),
            };
            let limit = check.time_limit.as_secs_f64();
            (
                Outcome::TimedOut,
                with_output(format!("timed out after {limit} s — {cause}")),
            )
        }
        (Some(status), Some(Verdict { passed: true, .. })) if status.success() => {
            (Outcome::Passed, String::new())
        }
        (Some(status), Some(Verdict { passed: true, .. })) => (
            Outcome::Crashed,
            with_output(format!(
                "the check passed, but its process then {} instead of exiting cleanly",
                describe_exit(status)
            )),
        ),
        (
            Some(_),
            Some(Verdict {
                passed: false,
                message,
            }),
        ) => (
            Outcome::Failed,
            message.unwrap_or_else(|| "the check failed".to_owned()),
        ),
        (Some(_), None) if output.contains("has overflowed its stack") => (
            Outcome::Crashed,
            with_output(format!(
                "the check's process overflowed its stack, so it did not pass; look for \
                 endless recursion in {}",
                check.subject
            )),
        ),
        (Some(status), None) => (
            Outcome::Crashed,
            with_output(format!(
                "the check's process {} before the check finished, so it did not pass; \
                 code under test must not exit or abort the process (look for \
                 std::process::exit, abort, or a panic inside Drop in {})",
                describe_exit(status),
                check.subject
            )),
        ),
    }
}

fn find_verdict(stdout: &str, token: &Secret) -> Option<Verdict> {
    // The last verdict line counts: the child prints exactly one, as its last act.
    let line = stdout.lines().rev().find_map(|line| token.strip(line))?;
    serde_json::from_str(line).ok()
}

fn strip_verdict(stdout: &str, token: &Secret) -> String {
    let kept: Vec<&str> = stdout
        .lines()
        .filter(|line| token.strip(line).is_none())
        .collect();
    let mut text = kept.join("\n");
    text.truncate(text.trim_end().len());
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Command-line options, in the subset of libtest's syntax that cargo passes.
struct Options {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    json: bool,
    threads: usize,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Options {
        let default_threads = thread::available_parallelism().map_or(2, |count| count.get());
        let mut options = Options {
            filters: Vec::new(),
            skips: Vec::new(),
            exact: false,
            list: false,
            json: false,
            threads: default_threads,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--format" => options.json = args.next().as_deref() == Some("json"),
                "--format=json" => options.json = true,
                "--test-threads" => {
                    options.threads = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(1);
                }
                _ if arg.starts_with("--test-threads=") => {
                    options.threads = arg["--test-threads=".len()..].parse().unwrap_or(1);
                }
                "--skip" => options.skips.extend(args.next()),
                // Flags that take a value and do not matter here.
                "--color" | "--logfile" | "-Z" => {
                    args.next();
                }
                _ if arg.starts_with('-') => {}
                _ => options.filters.push(arg),
            }
        }
        options
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |filter: &String| {
            if self.exact {
                name == filter
            } else {
                name.contains(filter.as_str())
            }
        };
        let chosen = self.filters.is_empty() || self.filters.iter().any(matches);
        chosen && !self.skips.iter().any(matches)
    }
}

/// Where the supervisor prints: readable text for `cargo test`, or one JSON
/// event a line for the workbook CLI, each line starting with the token the
/// CLI handed over, so that output forged by code under test is ignored.
struct Output {
    json: bool,
    token: Option<Secret>,
}

impl Output {
    fn event(&self, event: &Event) {
        if let Some(token) = &self.token {
            let line = serde_json::to_string(event).expect("events always serialize");
            // One write per line, so a check's process that writes into
            // this pipe at the same moment cannot split the token from the
            // event. The leading newline ends any partial line it wrote
            // first, which would otherwise swallow the token.
            let text = format!("\n{} {line}\n", token.reveal());
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }

    fn human(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn stage(&self, message: &str) {
        self.event(&Event::Stage {
            message: message.to_owned(),
        });
        self.human(&format!("{message} ..."));
    }

    fn check(&self, result: &CheckResult) {
        self.event(&Event::Check(result.clone()));
        let verdict = match result.outcome {
            Outcome::Passed => "ok",
            Outcome::Failed => "FAILED",
            Outcome::TimedOut => "TIMED OUT",
            Outcome::Crashed => "CRASHED",
        };
        self.human(&format!(
            "check {} ... {verdict} ({} ms)",
            result.name, result.duration_ms
        ));
    }

    fn human_summary(&self, report: &TaskReport) {
        if self.json {
            return;
        }
        let failing: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|check| check.outcome != Outcome::Passed)
            .collect();
        if !failing.is_empty() {
            println!("\nfailures:");
            for check in failing {
                println!("\n---- {} ({}) ----", check.name, check.subject);
                println!("{}", check.message.as_deref().unwrap_or(""));
            }
        }
        let learner = &report.learner_tests;
        let on_solution = match learner.status {
            LearnerStatus::NotRun => None,
            LearnerStatus::CompileError => Some("do not compile".to_owned()),
            LearnerStatus::Rejected => Some("were rejected".to_owned()),
            LearnerStatus::Failing => Some(format!(
                "fail on the solution ({})",
                learner.message.as_deref().unwrap_or("see their output")
            )),
            LearnerStatus::Passing => Some("pass on the solution".to_owned()),
        };
        if let Some(on_solution) = on_solution {
            let killed = if learner.mutants_killed.is_empty() {
                String::new()
            } else {
                format!(" ({})", learner.mutants_killed.join(", "))
            };
            println!(
                "\nlearner tests ({}) {on_solution}; they catch {} of {} mutants{killed}",
                learner.targets.join(", "),
                learner.mutants_killed.len(),
                learner.mutants_total,
            );
            if let (LearnerStatus::Passing, Some(note)) = (learner.status, &learner.message) {
                println!("note: {note}");
            }
        }
        if report.complete {
            println!(
                "\n{}: score {} of 3 — {}.\nnext: {}.\n",
                report.task, report.score, report.reason, report.next_step
            );
        } else {
            println!(
                "\n{}: no score, because a filter selected only some checks — {}.\nnext: {}.\n",
                report.task, report.reason, report.next_step
            );
        }
    }
}
