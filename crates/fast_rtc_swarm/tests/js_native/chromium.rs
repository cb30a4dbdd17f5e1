//! A headless Chromium showing one page, with the flags of `scripts/browser/webdriver.json`
//! (the same ones the wasm browser tests run with), killed with its whole process group on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Chromium {
    child: Child,
    profile: PathBuf,
}

/// The binary and arguments of `scripts/browser/webdriver.json`.
fn webdriver_settings() -> (String, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/browser/webdriver.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let options = &json["goog:chromeOptions"];
    let binary = options["binary"].as_str().unwrap_or("chromium").to_owned();
    let args = options["args"]
        .as_array()
        .expect("webdriver.json: goog:chromeOptions.args")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    (binary, args)
}

impl Chromium {
    /// Starts Chromium on `url`, with a fresh profile; its log goes to the profile directory
    /// and is printed if the test fails, or always with `FAST_RTC_CHROMIUM_LOG` set (Chromium's
    /// `Send failed` lines show messages the browser itself dropped).
    pub fn open(url: &str) -> Chromium {
        let (binary, args) = webdriver_settings();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "fast-rtc-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(profile.join("chromium.log")).unwrap();
        let child = Command::new(&binary)
            .args(["--headless", "--no-sandbox"])
            .args(&args)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        Chromium { child, profile }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The browser's renderer and utility processes are in its process group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        if std::thread::panicking() || std::env::var_os("FAST_RTC_CHROMIUM_LOG").is_some() {
            let log = std::fs::read_to_string(self.profile.join("chromium.log"));
            eprintln!("== chromium log\n{}", log.unwrap_or_default());
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
