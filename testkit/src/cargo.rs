//! Builds test executables through cargo and finds where cargo put them.
//!
//! Grading runs test executables directly instead of through `cargo test`, so
//! that a time limit can kill exactly the process that runs learner code, and
//! so that a compile error is told apart from a failing check.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// A request to build test targets of some packages.
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// Package names to build, passed as `-p NAME`.
    pub packages: Vec<String>,
    /// Test target names to build, passed as `--test NAME`; empty builds all.
    pub test_targets: Vec<String>,
    /// Features, written `package/feature` when several packages are built.
    pub features: Vec<String>,
}

/// Executables and errors of one build.
#[derive(Clone, Debug, Default)]
pub struct Build {
    /// Test executables, keyed by package folder and then by target name.
    pub executables: BTreeMap<PathBuf, BTreeMap<String, PathBuf>>,
    /// Rendered compiler errors, keyed by package folder.
    pub errors: BTreeMap<PathBuf, String>,
    /// Whether cargo reported the whole build as successful.
    pub success: bool,
    /// Cargo's own error output, for failures that no compiler message explains.
    pub stderr: String,
}

impl Build {
    /// Returns the executable of test target `target` of the package in `package_dir`.
    pub fn executable(&self, package_dir: &Path, target: &str) -> Option<&Path> {
        self.executables
            .get(package_dir)?
            .get(target)
            .map(PathBuf::as_path)
    }

    /// Returns the compiler errors of the package in `package_dir`, or cargo's
    /// own error output when the build failed without a compiler message and
    /// produced no executable of that package.
    pub fn error_for(&self, package_dir: &Path) -> Option<String> {
        if let Some(errors) = self.errors.get(package_dir) {
            return Some(errors.clone());
        }
        let built = self.executables.contains_key(package_dir);
        (!self.success && !built).then(|| self.stderr.clone())
    }
}

/// Returns the cargo that runs this process, or `cargo` from `PATH`.
pub fn cargo_command() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(program)
}

/// Builds the requested test targets with `cargo build --keep-going`, which
/// produces the same executables as `cargo test --no-run`.
///
/// The build keeps going past a package that fails to compile, so one broken
/// task does not hide the results of the others. `cargo test --no-run` would
/// stop at the first compile error, even with `--no-fail-fast`.
///
/// # Errors
///
/// Returns an error when cargo cannot be started or its output is not the
/// JSON message stream it documents.
pub fn build_tests(workspace_root: &Path, request: &BuildRequest) -> io::Result<Build> {
    let mut command = cargo_command();
    command
        .current_dir(workspace_root)
        .args(["build", "--keep-going", "--message-format=json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for package in &request.packages {
        command.args(["--package", package]);
    }
    if request.test_targets.is_empty() {
        command.arg("--tests");
    }
    for target in &request.test_targets {
        command.args(["--test", target]);
    }
    if !request.features.is_empty() {
        command.args(["--features", &request.features.join(",")]);
    }

    let output = command.output()?;
    let mut build = Build {
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ..Build::default()
    };
    for line in output.stdout.split(|&byte| byte == b'\n') {
        if line.is_empty() {
            continue;
        }
        let message: Message = serde_json::from_slice(line)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        record(&mut build, message);
    }
    Ok(build)
}

fn record(build: &mut Build, message: Message) {
    let Some(manifest) = message.manifest_path else {
        return;
    };
    let package_dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    match message.reason.as_str() {
        "compiler-artifact" => {
            let (Some(target), Some(executable)) = (message.target, message.executable) else {
                return;
            };
            if target.kind.iter().any(|kind| kind == "test") {
                let targets = build.executables.entry(package_dir).or_default();
                targets.insert(target.name, executable);
            }
        }
        "compiler-message" => {
            let Some(diagnostic) = message.message else {
                return;
            };
            if diagnostic.level == "error" {
                let text = build.errors.entry(package_dir).or_default();
                text.push_str(
                    diagnostic
                        .rendered
                        .as_deref()
                        .unwrap_or(&diagnostic.message),
                );
            }
        }
        _ => {}
    }
}

// The fields of cargo's JSON messages that grading reads; see
// https://doc.rust-lang.org/cargo/reference/external-tools.html#json-messages
#[derive(Deserialize)]
struct Message {
    reason: String,
    manifest_path: Option<PathBuf>,
    target: Option<Target>,
    executable: Option<PathBuf>,
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    message: String,
    rendered: Option<String>,
}
