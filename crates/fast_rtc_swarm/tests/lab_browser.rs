//! A browser member across the network lab (`crates/fast_rtc_netlab`): a JavaScript
//! reference-client member in a headless browser (`FAST_RTC_JS_BROWSER`: `scripts/netlab-test.sh`
//! runs it in Firefox) on a site of its own with a public address, two native `echo_peer`
//! members each behind its own cone NAT, the signaling server (with its own STUN server, which
//! it advertises in `joined`) on a public site, every lab link 40 ms one way (80 ms round
//! trips). The first native member's offer is parked when the browser joins, so the browser
//! answers it; the second native joins last and answers the browser's parked offer: both
//! directions of the handshake cross the WAN and a NAT. The natives link to each other over
//! their NATs' mappings (server-reflexive); each native's link to the browser reaches the
//! browser's own address. Data crosses every link both ways, and a burst of numbered messages
//! from the browser comes back echoed by both natives, whole and in order.
//!
//! Needs root (network namespaces, TUN, nftables), the browser, the bundled JS client and
//! `echo_peer` and `fast-rtc-server` built beside this test: `#[ignore]`d in a plain
//! `cargo test`; `scripts/netlab-test.sh` runs it after the lab's own tests.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // the test reads the clock to time the joins

mod js_native;
mod support;

use fast_rtc_netlab::{Lab, LinkSpec, Nat};
use fast_rtc_swarm::Payload;
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use js_native::browser::Browser;
use js_native::events::{Log, Report, not_open, received};
use js_native::native::NativeMember;
use js_native::page::JsPage;
use std::time::{Duration, Instant};

/// 40 ms one way on every link of the lab: 80 ms round trips.
const WAN: LinkSpec = LinkSpec::delay(Duration::from_millis(40));
/// The signaling server's port, and its STUN server's, on the public site.
const SIGNALING_PORT: u16 = 8787;
const STUN_PORT: u16 = 3478;
/// The numbered messages the browser sends once every link is open.
const BURST: usize = 50;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The members' `open` reports of their link to `peer`.
fn open_report<'a>(reports: &'a [Report], member: &str, peer: &str) -> &'a Report {
    reports
        .iter()
        .find(|r| {
            r.member == member && r.event.kind == "open" && r.event.user_id.as_deref() == Some(peer)
        })
        .unwrap_or_else(|| panic!("{member} has no open to {peer}"))
}

/// The IPv4 address of a candidate address `ip:port`.
fn ip_of(addr: Option<&str>) -> Option<std::net::Ipv4Addr> {
    addr?.rsplit_once(':')?.0.parse().ok()
}

/// The texts `member` received from `from` that start with `prefix`, in order.
fn texts_from(reports: &[Report], member: &str, from: &str, prefix: &str) -> Vec<String> {
    received(reports, member, from)
        .into_iter()
        .filter_map(|p| match p {
            Payload::Text(t) if t.starts_with(prefix) => Some(t),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root (network namespaces), a headless browser and echo_peer: scripts/netlab-test.sh"]
async fn browser_member_links_across_the_wan_with_natives_behind_cone_nats() {
    let browser = Browser::from_env();
    let js = format!("{}-1", browser.name());
    let (n1, n2) = ("native-1", "native-2");
    let lab = Lab::builder()
        .seed(1)
        .default_link(WAN)
        .site("server", Nat::None)
        .site("browser", Nat::None)
        .site(site_of(n1), Nat::Cone)
        .site(site_of(n2), Nat::Cone)
        .build()
        .unwrap_or_else(|e| panic!("lab: {e}"));
    let public = lab.site("server").unwrap();
    let public_ip = public.public_addr();

    // The signaling server on the public site, accepting the swarm tests' tokens, with its own
    // STUN server: the natives get it in `joined` (the JS reference client ignores it).
    let scratch = tempdir(public.namespace());
    let secret_file = scratch.join("secret");
    std::fs::write(&secret_file, support::SECRET).unwrap();
    let mut serve = public.command(server_bin::path().unwrap());
    serve
        .args([
            "serve",
            "--listen",
            &format!("{public_ip}:{SIGNALING_PORT}"),
        ])
        .arg("--secret-file")
        .arg(&secret_file)
        .args(["--stun-listen", &format!("{public_ip}:{STUN_PORT}")])
        .stderr(std::fs::File::create(scratch.join("server.log")).unwrap());
    let server = ServerProcess::spawn(&mut serve).unwrap_or_else(|e| panic!("server: {e}"));
    let url = server.url().to_owned();
    let room = "lab-browser";

    // The page of the JS member, served on the browser site's own loopback to a browser
    // running in that site.
    let (reporter, mut log) = Log::new();
    let site = lab.site("browser").unwrap();
    let listener = site
        .enter(|| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let page = JsPage::open_in(browser, reporter.clone(), listener, Some(site.namespace())).await;

    let spawn_native = |name: &str| {
        let site = lab.site(&site_of(name)).unwrap();
        NativeMember::spawn_in(
            site.namespace(),
            site.addr(),
            name,
            [&url, &support::token(name), room],
            reporter.clone(),
        )
    };
    let _native_1 = spawn_native(n1);
    // Its offer is parked before the browser joins: wait until it is in the room.
    std::thread::sleep(Duration::from_secs(1));

    let start = Instant::now();
    page.join(&js, &url, &support::token(&js), room, true);
    let browser_open = log
        .wait_for("the browser and native-1 open", |r| {
            not_open(r, &[n1, js.as_str()])
        })
        .await;
    std::thread::sleep(Duration::from_secs(1));
    let second = Instant::now();
    let _native_2 = spawn_native(n2);
    let all_open = log
        .wait_for("every pair open", |r| not_open(r, &[n1, n2, js.as_str()]))
        .await;
    println!(
        "netlab: {} member, 80 ms RTT: the browser's join (answering native-1's parked offer) \
         -> open {:.0} ms; native-2's join (answering both) -> every link open {:.0} ms",
        browser.name(),
        ms(browser_open - start),
        ms(all_open - second),
    );

    // The pairs the natives selected: to each other through their NATs' mappings, to the
    // browser at its own (public) address.
    let browser_ip = site.addr();
    for (member, peer) in [(n1, js.as_str()), (n2, js.as_str()), (n1, n2), (n2, n1)] {
        let open = &open_report(&log.reports, member, peer).event;
        println!(
            "netlab:   {member} -> {peer}: {:?} -> {:?} ({:?} -> {:?})",
            open.local, open.remote, open.local_addr, open.remote_addr
        );
        let remote_ip = ip_of(open.remote_addr.as_deref());
        if peer == js {
            assert_eq!(
                remote_ip,
                Some(browser_ip),
                "{member} reaches the browser at its address: {open:?}"
            );
        } else {
            let peer_public = lab.site(&site_of(peer)).unwrap().public_addr();
            let via_nat = remote_ip == Some(peer_public)
                || open.local.as_deref() == Some("srflx")
                || open.remote.as_deref() == Some("srflx");
            assert!(via_nat, "{member} -> {peer} through the NATs: {open:?}");
        }
    }

    // Greetings both ways on every link, and the natives' echoes of the browser's greeting.
    let greeting = format!("hello from {js}");
    let echo = format!("echo:{greeting}");
    log.wait_for("every greeting and echo", |r| {
        let mut missing = Vec::new();
        for native in [n1, n2] {
            if texts_from(r, &js, native, "hello from native").is_empty() {
                missing.push(format!("{js} <- {native}: hello"));
            }
            if texts_from(r, native, &js, &greeting).is_empty() {
                missing.push(format!("{native} <- {js}: {greeting}"));
            }
            if texts_from(r, &js, native, &echo).is_empty() {
                missing.push(format!("{js} <- {native}: {echo}"));
            }
        }
        for (a, b) in [(n1, n2), (n2, n1)] {
            if texts_from(r, a, b, "hello from native").is_empty() {
                missing.push(format!("{a} <- {b}: hello"));
            }
        }
        missing
    })
    .await;

    // A burst of numbered messages from the browser to each native, echoed back: all of
    // them, once each, in order.
    let burst_start = Instant::now();
    for i in 0..BURST {
        for native in [n1, n2] {
            page.send(&js, native, &format!("n{i:03}"));
        }
    }
    let want: Vec<String> = (0..BURST).map(|i| format!("echo:n{i:03}")).collect();
    let burst_done = log
        .wait_for("the burst's echoes", |r| {
            [n1, n2]
                .into_iter()
                .filter(|native| texts_from(r, &js, native, "echo:n").len() < BURST)
                .map(|native| format!("{js} <- {native}: the burst's echoes"))
                .collect()
        })
        .await;
    for native in [n1, n2] {
        assert_eq!(
            texts_from(&log.reports, &js, native, "echo:n"),
            want,
            "{native}'s echoes, whole and in order"
        );
    }
    println!(
        "netlab: {} member: {BURST} messages to each native and back in {:.0} ms",
        browser.name(),
        ms(burst_done - burst_start)
    );
    let closes: Vec<&Report> = log
        .reports
        .iter()
        .filter(|r| r.event.kind == "close")
        .collect();
    assert!(closes.is_empty(), "no link closed: {closes:?}");
    drop(page);
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The lab site of native member `name` (a site's name has no `-`).
fn site_of(name: &str) -> String {
    name.replace('-', "")
}

/// A scratch folder for the server's secret and log, named after a namespace of the lab.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fast-rtc-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
