//! Running the system's network tools (`ip`, `nft`, `sysctl`) and turning a failure into a
//! [`LabError`] that shows the command and what it said.

use crate::error::LabError;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args…`, optionally with `input` on its stdin; an error unless it exits 0.
pub(crate) fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, LabError> {
    let command = format!("{program} {}", args.join(" "));
    let spawn_error = |source| LabError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `ip ARGS…`.
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args, None)
}

/// `ip -n NAMESPACE ARGS…`.
pub(crate) fn ip_in(namespace: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["-n", namespace];
    all.extend_from_slice(args);
    ip(&all)
}

/// `ip netns exec NAMESPACE PROGRAM ARGS…`, optionally with `input` on stdin.
pub(crate) fn exec_in(
    namespace: &str,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", namespace, program];
    all.extend_from_slice(args);
    run("ip", &all, input)
}
