//! The child side of a check: read the token, run the check, report.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Environment variable that makes a grading executable run one check.
pub(crate) const CHECK_VAR: &str = "WORKBOOK_CHECK";

/// The verdict a child prints after its token.
#[derive(Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub(crate) passed: bool,
    pub(crate) message: Option<String>,
}

// Location of the most recent panic, recorded by the panic hook, so that the
// verdict can say where the check failed.
static LAST_PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

/// Runs `check` as the only work of this process, prints the verdict line and
/// exits. Never returns.
pub(crate) fn run(check: fn()) -> ! {
    // The token arrives before any learner code runs, and standard input is
    // then empty, so code under test cannot read it back.
    let Ok(token) = Secret::read_from_stdin() else {
        eprintln!(
            "a grading child needs its token on standard input; run the suite without {CHECK_VAR}"
        );
        std::process::exit(2);
    };

    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(location) = info.location() {
            let mut last = LAST_PANIC_LOCATION
                .lock()
                .unwrap_or_else(|err| err.into_inner());
            *last = Some(location.to_string());
        }
        default_hook(info);
    }));

    let verdict = match panic::catch_unwind(AssertUnwindSafe(check)) {
        Ok(()) => Verdict {
            passed: true,
            message: None,
        },
        Err(payload) => Verdict {
            passed: false,
            message: Some(panic_message(&*payload)),
        },
    };

    let line = serde_json::to_string(&verdict).expect("a verdict always serializes");
    // One write, so that the token and the verdict stay on one line. A
    // failed write leaves the supervisor without a verdict, which it reports.
    let text = format!("\n{} {line}\n", token.reveal());
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    std::process::exit(0);
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "the check panicked with a value that is not a string".to_owned()
    };
    let location = LAST_PANIC_LOCATION
        .lock()
        .unwrap_or_else(|err| err.into_inner())
        .take();
    match location {
        Some(location) => format!("{text}\n  (panicked at {location})"),
        None => text,
    }
}
