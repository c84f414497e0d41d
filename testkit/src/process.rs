//! Runs a child process with a time limit and bounded captured output.
//!
//! The grading supervisor runs checks through it, and the learner-test step
//! and the CLI run test executables through it.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes kept of each output stream; a solution that prints without end must
/// not exhaust the grader's memory.
const OUTPUT_LIMIT: usize = 256 * 1024;

/// How a limited run ended.
pub struct Finished {
    /// Exit status, or `None` when the process was killed at its time limit.
    pub status: Option<ExitStatus>,
    /// The first 256 KiB of standard output.
    pub stdout: Vec<u8>,
    /// The first 256 KiB of standard error.
    pub stderr: Vec<u8>,
    /// Wall-clock time from start to exit or kill.
    pub elapsed: Duration,
}

/// Runs `command`, writes `input` to its standard input, and kills it once
/// `limit` has passed.
///
/// # Errors
///
/// Returns the I/O error when the process cannot be started or waited for.
pub fn run_limited(command: &mut Command, input: &[u8], limit: Duration) -> io::Result<Finished> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    // A child that never reads its input must not block the grader, so the
    // input is small and a failed write only means the child ended early.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());

    let status = wait_until(&mut child, started + limit)?;
    Ok(Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            // The kill fails only when the child has just exited; wait reaps it either way.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Reads `stream` to its end on a new thread and returns its first 256 KiB.
pub fn capture<R: Read + Send + 'static>(stream: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let Some(mut stream) = stream else {
            return kept;
        };
        let mut buffer = [0u8; 8192];
        // Keep reading past the limit, so the child never blocks on a full pipe.
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let room = OUTPUT_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buffer[..read.min(room)]);
        }
        kept
    })
}

/// Describes how a process that did not report ended, in the learner's terms.
pub fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let cause = match signal {
                6 => "SIGABRT: std::process::abort, or a panic inside Drop while already panicking",
                9 => {
                    "SIGKILL: the process was killed from outside, possibly for using too much memory"
                }
                11 => "SIGSEGV: invalid memory access, or a stack overflow from endless recursion",
                _ => "a signal the grader does not expect",
            };
            return format!("was killed by signal {signal} ({cause})");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("ended with {status}"),
    }
}
