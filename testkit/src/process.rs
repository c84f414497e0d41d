//! Runs a child process with a time limit and bounded captured output.
//!
//! The grading supervisor runs checks through it, and the learner-test step
//! and the CLI run test executables through it.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes kept of the start and of the end of each output stream. A solution
/// that prints without end must not exhaust the grader's memory, and the end
/// is where a check's verdict is.
const KEEP_HEAD: usize = 128 * 1024;
const KEEP_TAIL: usize = 128 * 1024;

/// Time the output readers get to reach the end of the streams once the
/// process has ended; a descendant that still holds the pipes open must not
/// keep the grader waiting.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Outcome and output of a limited run.
pub struct Finished {
    /// Exit status, or `None` when the process was killed at its time limit.
    pub status: Option<ExitStatus>,
    /// Standard output: its first and last 128 KiB.
    pub stdout: Vec<u8>,
    /// Standard error: its first and last 128 KiB.
    pub stderr: Vec<u8>,
    /// Wall-clock time from start to exit or kill.
    pub elapsed: Duration,
}

/// Runs `command`, writes `input` to its standard input, and kills it once
/// `limit` has passed.
///
/// The process runs in a process group of its own. When it ends, every
/// process left in that group is killed too, so that a solution's helper
/// processes do not outlive their check; one that leaves the group escapes.
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
        .process_group(0)
        .spawn()?;

    // A child that never reads its input must not block the grader, so the
    // input is small and a failed write only means the child ended early.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());

    let status = wait_until(&mut child, started + limit)?;
    kill_group(&child);
    let drained_by = Instant::now() + DRAIN_LIMIT;
    Ok(Finished {
        status,
        stdout: stdout.finish(drained_by),
        stderr: stderr.finish(drained_by),
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

/// Kills every process left in the child's process group.
fn kill_group(child: &Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: `killpg` only sends a signal. The group id is the child's pid,
    // which `process_group(0)` made a group leader; the child has been reaped,
    // so at worst the group is empty and the call fails with ESRCH.
    unsafe {
        libc::killpg(group, libc::SIGKILL);
    }
}

/// The output of one stream, read on a thread of its own.
pub struct Capture {
    kept: Arc<Mutex<Kept>>,
    done: mpsc::Receiver<()>,
}

#[derive(Default)]
struct Kept {
    head: Vec<u8>,
    tail: Vec<u8>,
    omitted: usize,
}

impl Capture {
    /// Starts reading `stream` to its end on a new thread.
    pub fn start<R: Read + Send + 'static>(stream: Option<R>) -> Capture {
        let kept = Arc::new(Mutex::new(Kept::default()));
        let (done_sender, done) = mpsc::channel();
        let shared = Arc::clone(&kept);
        thread::spawn(move || {
            if let Some(mut stream) = stream {
                let mut buffer = [0u8; 8192];
                // Keep reading past the limits, so the child never blocks on a full pipe.
                while let Ok(read) = stream.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    shared
                        .lock()
                        .unwrap_or_else(|err| err.into_inner())
                        .keep(&buffer[..read]);
                }
            }
            let _ = done_sender.send(());
        });
        Capture { kept, done }
    }

    /// Waits until the stream ends or `deadline` passes, then returns what was
    /// kept, with a marker where bytes were left out.
    pub fn finish(self, deadline: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let kept = self.kept.lock().unwrap_or_else(|err| err.into_inner());
        let mut bytes = kept.head.clone();
        if kept.omitted > 0 {
            bytes
                .extend_from_slice(format!("\n[… {} bytes left out …]\n", kept.omitted).as_bytes());
        }
        bytes.extend_from_slice(&kept.tail);
        bytes
    }
}

impl Kept {
    fn keep(&mut self, mut bytes: &[u8]) {
        let room = KEEP_HEAD.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        bytes = rest;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > KEEP_TAIL {
            let excess = self.tail.len() - KEEP_TAIL;
            self.tail.drain(..excess);
            self.omitted += excess;
        }
    }
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
