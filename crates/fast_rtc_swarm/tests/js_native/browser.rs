//! A headless browser showing one page, Chromium or Firefox, with the settings of
//! `scripts/browser/webdriver.json` (the ones the wasm browser tests run with: Chromium's flags,
//! Firefox's prefs), killed with its whole process group on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The browser a page of JS members runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    /// `FAST_RTC_JS_BROWSER`: `chromium` (the default) or `firefox`.
    pub fn from_env() -> Browser {
        match std::env::var("FAST_RTC_JS_BROWSER").as_deref() {
            Err(_) | Ok("chromium") => Browser::Chromium,
            Ok("firefox") => Browser::Firefox,
            Ok(other) => panic!("FAST_RTC_JS_BROWSER={other}: chromium or firefox"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }
}

/// A running browser: its process group and its fresh profile directory.
pub struct BrowserProcess {
    browser: Browser,
    child: Child,
    profile: PathBuf,
}

/// `scripts/browser/webdriver.json`.
fn webdriver_json() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/browser/webdriver.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The binary and arguments of webdriver.json's `goog:chromeOptions`.
fn chromium_settings(json: &serde_json::Value) -> (String, Vec<String>) {
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

/// The binary of webdriver.json's `moz:firefoxOptions`, and its prefs as a `user.js`.
fn firefox_settings(json: &serde_json::Value) -> (String, String) {
    let options = &json["moz:firefoxOptions"];
    let binary = options["binary"]
        .as_str()
        .unwrap_or("firefox-esr")
        .to_owned();
    let prefs = options["prefs"]
        .as_object()
        .expect("webdriver.json: moz:firefoxOptions.prefs");
    // A pref's value is a JSON boolean, number or string: the same literal in user.js.
    let user_js = prefs
        .iter()
        .map(|(name, value)| format!("user_pref({name:?}, {value});\n"))
        .collect();
    (binary, user_js)
}

impl BrowserProcess {
    /// Starts `browser` on `url`, headless, with a fresh profile; its log goes to the profile
    /// directory and is printed if the test fails, or always with `FAST_RTC_BROWSER_LOG` set
    /// (Chromium's `Send failed` lines show messages the browser itself dropped).
    pub fn open(browser: Browser, url: &str) -> BrowserProcess {
        BrowserProcess::open_in(browser, url, None)
    }

    /// As [`BrowserProcess::open`], in the network namespace `netns` when given (`ip netns
    /// exec`: a member on a site of the network lab).
    pub fn open_in(browser: Browser, url: &str, netns: Option<&str>) -> BrowserProcess {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "fast-rtc-{}-{}-{}",
            browser.name(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(profile.join("browser.log")).unwrap();
        let json = webdriver_json();
        let start = |binary: String| match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut command = match browser {
            Browser::Chromium => {
                let (binary, args) = chromium_settings(&json);
                let mut command = start(binary);
                command
                    .args(["--headless", "--no-sandbox"])
                    .args(args)
                    .arg(format!("--user-data-dir={}", profile.display()));
                command
            }
            Browser::Firefox => {
                let (binary, user_js) = firefox_settings(&json);
                std::fs::write(profile.join("user.js"), user_js).unwrap();
                let mut command = start(binary);
                command
                    .args(["--headless", "--no-remote", "--profile"])
                    .arg(&profile);
                command
            }
        };
        let child = command
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", browser.name()));
        BrowserProcess {
            browser,
            child,
            profile,
        }
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        // The browser's content, renderer and utility processes are in its process group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        if std::thread::panicking() || std::env::var_os("FAST_RTC_BROWSER_LOG").is_some() {
            let log = std::fs::read_to_string(self.profile.join("browser.log"));
            eprintln!(
                "== {} log\n{}",
                self.browser.name(),
                log.unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
