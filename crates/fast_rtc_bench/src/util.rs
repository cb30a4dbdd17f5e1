//! Helpers shared by the subcommands: the library under test, the shared secret and our server,
//! the machine line, medians and resident memory.

use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TokenIssuer};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// The secret every benchmark server and token uses.
const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

/// The library a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Lib {
    Ours,
    Matchbox,
}

impl Lib {
    /// Its name in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Lib::Ours => "bevy_fast_rtc",
            Lib::Matchbox => "matchbox 0.15",
        }
    }

    /// Its value on a child process's command line (`--kind`, `--lib`).
    pub fn arg(self) -> &'static str {
        match self {
            Lib::Ours => "ours",
            Lib::Matchbox => "matchbox",
        }
    }
}

/// A multi-threaded tokio runtime with IO and timers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The benchmark's JWT secret.
pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// A token issuer for [`secret`].
pub fn issuer() -> TokenIssuer {
    TokenIssuer::new(&secret())
}

/// A token for `user` in `room` (`*` for any room), valid for an hour.
pub fn token(issuer: &TokenIssuer, user: &str, room: &str) -> String {
    issuer
        .issue(user, room, Duration::from_secs(3600), SystemTime::now())
        .unwrap()
}

/// Our server with its default configuration, in this process, on a free port of 127.0.0.1.
pub async fn spawn_server() -> ServerHandle {
    Server::new(ServerConfig::default(), JwtAuthenticator::new(&secret()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// `N cores, <CPU model>`, for the header of every table.
pub fn machine() -> String {
    format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Resident set size of a process (a pid, or `"self"`), in KiB; 0 when unknown.
pub fn rss_kib(process: impl std::fmt::Display) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The last line of a child process's stdout that parses as `T` (a child prints its result
/// as one JSON line last), or why there is none: the child's exit status and last stderr line.
pub fn child_result<T: serde::de::DeserializeOwned>(
    out: &std::process::Output,
) -> Result<T, String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "child exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        })
}

/// Writes a bench's JSON `report` to `path` (making its folder) and says where.
pub fn write_report(path: &std::path::Path, report: &impl Serialize) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, serde_json::to_vec_pretty(report).unwrap()).unwrap();
    println!();
    println!("JSON: {}", path.display());
}
