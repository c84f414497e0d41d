//! Private `nats-server` instances for checks that talk to NATS.
//!
//! [`NatsServer::start`] spawns `nats-server` on a free port of 127.0.0.1,
//! with its files in a temporary folder of its own, so that suites run in
//! parallel and need nothing running beforehand. Dropping the handle kills
//! the server and removes the folder. When the environment variable
//! `NATS_URL` is set, every start returns that server instead and spawns
//! nothing.
//!
//! A missing `nats-server` binary is an error whose one line gives the
//! install command, so a check that needs the server fails instead of
//! skipping.
//!
//! ```no_run
//! use testkit::nats::NatsServer;
//!
//! let server = NatsServer::start().unwrap_or_else(|err| panic!("{err}"));
//! // Any NATS client connects to `server.url()`, e.g. nats://127.0.0.1:41873.
//! assert!(server.url().starts_with("nats://"));
//! ```

use std::error::Error;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable that names an existing server, such as
/// `nats://127.0.0.1:4222`, to use instead of a private one.
pub const URL_VAR: &str = "NATS_URL";

/// Name of the server binary, looked up on `PATH`.
pub const BINARY: &str = "nats-server";

/// Time a spawned server gets to write its ports file. It usually takes
/// about 50 ms; the margin is for a machine busy with parallel builds.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Pause between two looks for the ports file.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Bytes of the server's log kept for an error message.
const LOG_TAIL: u64 = 2048;

/// Options for a private server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsOptions {
    /// Enables JetStream, with its store in the server's temporary folder
    /// (`-js -sd DIR`).
    pub jetstream: bool,
}

impl NatsOptions {
    /// Enables JetStream, with a store that lives as long as the server.
    pub fn with_jetstream(mut self) -> NatsOptions {
        self.jetstream = true;
        self
    }
}

/// A NATS server for one test: a private `nats-server` process, or the
/// existing server that `NATS_URL` names.
///
/// Dropping it kills the private process and removes its folder.
#[derive(Debug)]
pub struct NatsServer {
    url: String,
    // `None` when `NATS_URL` named the server.
    process: Option<ServerProcess>,
}

#[derive(Debug)]
struct ServerProcess {
    child: Child,
    dir: PathBuf,
}

impl NatsServer {
    /// Starts a private server without JetStream, or returns the server that
    /// `NATS_URL` names.
    ///
    /// # Errors
    ///
    /// Returns [`NatsError::Missing`] when `nats-server` is not on `PATH`,
    /// and another [`NatsError`] when the server does not start within 10 s.
    pub fn start() -> Result<NatsServer, NatsError> {
        NatsServer::start_with(&NatsOptions::default())
    }

    /// Starts a private server with `options`, or returns the server that
    /// `NATS_URL` names, whose options are its own.
    ///
    /// # Errors
    ///
    /// As [`NatsServer::start`].
    pub fn start_with(options: &NatsOptions) -> Result<NatsServer, NatsError> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Ok(NatsServer {
                url: url.trim().to_owned(),
                process: None,
            }),
            _ => spawn(OsStr::new(BINARY), options),
        }
    }

    /// Returns the URL that clients connect to, such as
    /// `nats://127.0.0.1:41873`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the server's temporary folder, or `None` when `NATS_URL`
    /// named the server. The JetStream store is its `store` subfolder.
    pub fn dir(&self) -> Option<&Path> {
        self.process.as_ref().map(|process| process.dir.as_path())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            // Killing fails only when the server has already exited; waiting
            // reaps it either way.
            let _ = process.child.kill();
            let _ = process.child.wait();
            let _ = fs::remove_dir_all(&process.dir);
        }
    }
}

/// Error from starting a private server.
#[derive(Debug)]
pub enum NatsError {
    /// The `nats-server` binary is not on `PATH`.
    Missing,
    /// The temporary folder could not be created.
    Folder {
        /// The folder that could not be created.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The binary was found but could not be started.
    Spawn {
        /// The cause.
        source: io::Error,
    },
    /// The server exited before it reported its port.
    Exited {
        /// Exit status of the server.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// The server did not write a readable ports file in time.
    NoPort {
        /// The ports file that was expected.
        path: PathBuf,
        /// Time the start waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsError::Missing => write!(
                f,
                "{BINARY} not found on PATH: install it with `apt-get install nats-server` on \
                 Debian/Ubuntu (it lands in /usr/sbin, which must be on PATH) or `brew install \
                 nats-server` on macOS, or set {URL_VAR} to an existing server such as \
                 nats://127.0.0.1:4222"
            ),
            NatsError::Folder { path, source } => write!(
                f,
                "could not create the folder {} for {BINARY}: {source}",
                path.display()
            ),
            NatsError::Spawn { source } => write!(
                f,
                "could not start {BINARY}: {source}; check that the file on PATH is executable, \
                 or set {URL_VAR} to an existing server"
            ),
            NatsError::Exited { status, log } => write!(
                f,
                "{BINARY} exited before it reported its port ({status}); its log ends with:\n{log}"
            ),
            NatsError::NoPort { path, waited, log } => write!(
                f,
                "{BINARY} did not write its ports file {} within {} s; its log ends with:\n{log}",
                path.display(),
                waited.as_secs()
            ),
        }
    }
}

impl Error for NatsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            NatsError::Folder { source, .. } | NatsError::Spawn { source } => Some(source),
            _ => None,
        }
    }
}

/// Spawns `binary` as a private server and waits until it reports its port.
fn spawn(binary: &OsStr, options: &NatsOptions) -> Result<NatsServer, NatsError> {
    let dir = create_folder()?;
    let ports_dir = dir.join("ports");
    let store_dir = dir.join("store");
    let log_path = dir.join("server.log");
    let prepared = fs::create_dir(&ports_dir)
        .and_then(|()| fs::create_dir(&store_dir))
        .and_then(|()| File::create(&log_path));
    let log = match prepared {
        Ok(log) => log,
        Err(source) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(NatsError::Folder { path: dir, source });
        }
    };

    // `-p -1` lets the server choose a free port, which it writes to the
    // ports file; `-a 127.0.0.1` keeps it off every other interface.
    let mut command = Command::new(binary);
    command
        .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
        .arg(&ports_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if options.jetstream {
        command.args(["-js", "-sd"]).arg(&store_dir);
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(match source.kind() {
                io::ErrorKind::NotFound => NatsError::Missing,
                _ => NatsError::Spawn { source },
            });
        }
    };

    // From here on, dropping the handle kills the process and removes the
    // folder, on every error path too.
    let ports_file = ports_dir.join(format!("{BINARY}_{}.ports", child.id()));
    let mut server = NatsServer {
        url: String::new(),
        process: Some(ServerProcess { child, dir }),
    };
    server.url = wait_for_url(&mut server, &ports_file, &log_path)?;
    Ok(server)
}

/// Polls until the server has written its client URL to `ports_file`, it has
/// exited, or [`START_LIMIT`] has passed.
fn wait_for_url(
    server: &mut NatsServer,
    ports_file: &Path,
    log_path: &Path,
) -> Result<String, NatsError> {
    let started = Instant::now();
    loop {
        // The file may be read while it is being written; a partial file
        // does not parse and is read again on the next round.
        if let Some(url) = read_url(ports_file) {
            return Ok(url);
        }
        let process = server
            .process
            .as_mut()
            .expect("a spawned server has a process");
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(NatsError::Exited {
                status,
                log: log_tail(log_path),
            });
        }
        if started.elapsed() >= START_LIMIT {
            return Err(NatsError::NoPort {
                path: ports_file.to_owned(),
                waited: START_LIMIT,
                log: log_tail(log_path),
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Returns the first client URL in a ports file, which reads
/// `{"nats":["nats://127.0.0.1:41873"]}`.
fn read_url(ports_file: &Path) -> Option<String> {
    let text = fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports.get("nats")?.get(0)?.as_str()?;
    Some(url.to_owned())
}

/// Returns the last [`LOG_TAIL`] bytes of the server's log.
fn log_tail(log_path: &Path) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(log_path)?;
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
    };
    match read() {
        Ok(text) if text.is_empty() => "(the log is empty)".to_owned(),
        Ok(text) => text,
        Err(err) => format!("(the log could not be read: {err})"),
    }
}

/// Creates a new, empty folder under the system's temporary folder.
fn create_folder() -> Result<PathBuf, NatsError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("testkit-nats-{}-{number}", std::process::id()));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            // A folder left behind by an earlier process with the same id.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(NatsError::Folder { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn server_listens_on_loopback() {
        let server = spawn(OsStr::new(BINARY), &NatsOptions::default())
            .unwrap_or_else(|err| panic!("{err}"));

        // A NATS server greets every new connection with an INFO line.
        let address = server
            .url()
            .strip_prefix("nats://")
            .expect("the ports file lists nats:// URLs");
        assert!(
            address.starts_with("127.0.0.1:"),
            "expected a loopback address, got {address}"
        );
        let stream = TcpStream::connect(address).expect("the server accepts connections");
        let mut greeting = String::new();
        BufReader::new(stream)
            .read_line(&mut greeting)
            .expect("the server sends a greeting");
        assert!(
            greeting.starts_with("INFO "),
            "unexpected greeting {greeting:?}"
        );
    }

    #[test]
    fn drop_kills_server_and_removes_folder() {
        let server = spawn(OsStr::new(BINARY), &NatsOptions::default().with_jetstream())
            .unwrap_or_else(|err| panic!("{err}"));
        let dir = server
            .dir()
            .expect("a spawned server has a folder")
            .to_owned();
        let address = server.url().trim_start_matches("nats://").to_owned();
        assert!(dir.join("store").is_dir());

        drop(server);

        assert!(!dir.exists(), "{} is still there", dir.display());
        assert!(
            TcpStream::connect(&address).is_err(),
            "{address} still accepts connections"
        );
    }

    #[test]
    fn missing_binary_names_the_fix() {
        let binary = OsStr::new("nats-server-that-is-not-installed");
        let err = spawn(binary, &NatsOptions::default()).expect_err("the binary does not exist");

        let message = err.to_string();
        assert!(matches!(err, NatsError::Missing), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
        for part in [
            "apt-get install nats-server",
            "brew install nats-server",
            URL_VAR,
        ] {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }
}
