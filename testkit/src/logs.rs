//! Captures `tracing` events so that a check can assert on what was logged.
//!
//! Each check runs in its own process, so [`capture`] installs a global
//! subscriber that records every event of every thread and runtime.
//!
//! ```
//! let logs = testkit::logs::capture();
//! tracing::warn!(topic = "orders", "second blocking subscriber");
//! let warnings = logs.at_level(tracing::Level::WARN);
//! assert_eq!(warnings.len(), 1);
//! assert_eq!(warnings[0].field("topic"), Some("orders"));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Level the event was logged at.
    pub level: Level,
    /// Target, by default the module path of the code that logged.
    pub target: String,
    /// The event's message, or an empty string when it has none.
    pub message: String,
    /// Other fields as `(name, value)`, values formatted with `Debug`
    /// except strings, which are kept as they are.
    pub fields: Vec<(String, String)>,
}

impl LoggedEvent {
    /// Returns the value of field `name`, if the event has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for LoggedEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {}: {}",
            self.level, self.target, self.message
        )?;
        for (name, value) in &self.fields {
            write!(formatter, " {name}={value}")?;
        }
        Ok(())
    }
}

/// Handle on the events recorded since the capture was installed.
#[derive(Clone, Debug)]
pub struct Logs {
    events: Arc<Mutex<Vec<LoggedEvent>>>,
}

impl Logs {
    /// Returns every event recorded so far.
    pub fn events(&self) -> Vec<LoggedEvent> {
        self.events
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .clone()
    }

    /// Returns the events recorded at exactly `level`.
    pub fn at_level(&self, level: Level) -> Vec<LoggedEvent> {
        self.events()
            .into_iter()
            .filter(|event| event.level == level)
            .collect()
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .clear();
    }
}

/// Installs the recording subscriber for the whole process, once, and returns
/// a handle on what it records.
///
/// # Panics
///
/// Panics when another global subscriber was installed first, because events
/// would then go there and every assertion on them would prove nothing.
pub fn capture() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs {
            events: Arc::new(Mutex::new(Vec::new())),
        };
        let recorder = Recorder {
            events: Arc::clone(&logs.events),
            next_span: AtomicU64::new(1),
        };
        tracing::subscriber::set_global_default(recorder)
            .expect("another global tracing subscriber is installed; remove it from the check");
        logs
    })
    .clone()
}

struct Recorder {
    events: Arc<Mutex<Vec<LoggedEvent>>>,
    next_span: AtomicU64,
}

impl Subscriber for Recorder {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    // Spans are not recorded; each still needs a distinct, non-zero id.
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = FieldCollector::default();
        event.record(&mut visitor);
        let logged = LoggedEvent {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            message: visitor.message,
            fields: visitor.fields,
        };
        self.events
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .push(logged);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl FieldCollector {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}
