//! The lab itself, with plain UDP sockets bound inside its sites: the WAN's delay and loss are
//! what was asked, a cone NAT keeps one mapping for every destination while a symmetric one
//! does not, a private address is not reachable from the WAN, and dropping the lab deletes its
//! namespaces. Needs root: `#[ignore]`d in a plain `cargo test`; `scripts/netlab-test.sh` runs
//! them (`cargo test -p fast_rtc_netlab -- --ignored`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use fast_rtc_netlab::{Lab, LinkSpec, Nat};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// A socket bound to `port` on the site's own address, inside the site, with a read timeout.
fn socket(site: &fast_rtc_netlab::Site, port: u16) -> UdpSocket {
    let s = site
        .enter(|| UdpSocket::bind((site.addr(), port)))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// Echoes every datagram back to where it came from, for `count` datagrams or until a read
/// times out.
fn echo(socket: UdpSocket, count: usize) -> std::thread::JoinHandle<Vec<SocketAddr>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..count {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            seen.push(from);
            let _ = socket.send_to(&buf[..n], from);
        }
        seen
    })
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn round_trips_take_twice_the_one_way_delay_and_loss_is_near_its_rate() {
    let lab = Lab::builder()
        .seed(3)
        .site("a", Nat::None)
        .site("b", Nat::None)
        .link("a", "b", LinkSpec::delay(40 * MS))
        .build()
        .unwrap();
    let (a, b) = (lab.site("a").unwrap(), lab.site("b").unwrap());
    let server = socket(b, 7000);
    let echoer = echo(server, 10);
    let client = socket(a, 0);
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..10u8 {
        let sent = Instant::now();
        client.send_to(&[i], (b.addr(), 7000)).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i]);
        rtts.push(sent.elapsed());
    }
    echoer.join().unwrap();
    rtts.sort();
    println!(
        "80 ms link RTTs: min {:?}, median {:?}, max {:?}",
        rtts[0], rtts[5], rtts[9]
    );
    // Never faster than the links; the median near them (the WAN's threads add microseconds,
    // a loaded machine's scheduler may add more to a few).
    assert!(rtts[0] >= 80 * MS, "{rtts:?}");
    assert!(rtts[5] < 90 * MS, "{rtts:?}");
    let stats = lab.link_stats("a", "b").unwrap();
    assert_eq!(
        (stats.sent, stats.lost, stats.delivered),
        (10, 0, 10),
        "{stats:?}"
    );
    drop(lab);

    // 10 % loss one way (a → b), none back: about 100 of 1,000 datagrams never arrive.
    let lossy = LinkSpec::delay(MS).with_loss(0.10);
    let lab = Lab::builder()
        .seed(3)
        .site("a", Nat::None)
        .site("b", Nat::None)
        .link_one_way("a", "b", lossy)
        .build()
        .unwrap();
    let (a, b) = (lab.site("a").unwrap(), lab.site("b").unwrap());
    let receiver = socket(b, 7000);
    // Read while they come: a socket's buffer holds only a few hundred small datagrams.
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        let mut buf = [0u8; 8];
        while receiver.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    let sender = socket(a, 0);
    for i in 0..1000u16 {
        sender.send_to(&i.to_be_bytes(), (b.addr(), 7000)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(MS);
        }
    }
    let got = reader.join().unwrap();
    let stats = lab.link_stats("a", "b").unwrap();
    println!("10 % loss: {got} of 1000 arrived, {stats:?}");
    assert_eq!(stats.sent, 1000);
    assert_eq!(stats.delivered, got);
    assert_eq!(stats.lost + stats.delivered + stats.overflowed, 1000);
    assert!((60..=140).contains(&stats.lost), "{stats:?}");
}

/// The source addresses a public echo server sees of one socket of `nat`'s host, sending to
/// two ports of it.
fn mappings(nat: Nat) -> (Vec<SocketAddr>, std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let lab = Lab::builder()
        .site("server", Nat::None)
        .site("host", Nat::None)
        .site("natted", nat)
        .build()
        .unwrap();
    let (server, host, natted) = (
        lab.site("server").unwrap(),
        lab.site("host").unwrap(),
        lab.site("natted").unwrap(),
    );
    let echo1 = echo(socket(server, 7001), 1);
    let echo2 = echo(socket(server, 7002), 1);
    let client = socket(natted, 0);
    let mut buf = [0u8; 8];
    for port in [7001, 7002] {
        client.send_to(b"x", (server.addr(), port)).unwrap();
        client.recv_from(&mut buf).unwrap();
    }
    let mut seen = echo1.join().unwrap();
    seen.extend(echo2.join().unwrap());
    // Unsolicited: another public host cannot reach the NATed host's private address.
    let stranger = socket(host, 0);
    stranger.send_to(b"x", (natted.addr(), 7003)).unwrap();
    let inside = socket(natted, 7003);
    assert!(
        inside.recv_from(&mut buf).is_err(),
        "a private address was reachable"
    );
    assert!(lab.unroutable() >= 1);
    (seen, natted.public_addr(), natted.addr())
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn a_cone_nat_keeps_one_mapping_a_symmetric_one_does_not() {
    let (cone, public, private) = mappings(Nat::Cone);
    println!("cone NAT: {private} is seen as {cone:?}");
    assert_eq!(cone.len(), 2);
    assert!(cone.iter().all(|a| a.ip() == public));
    assert_eq!(
        cone[0], cone[1],
        "a cone NAT maps one socket to one address"
    );

    let (symmetric, public, private) = mappings(Nat::Symmetric);
    println!("symmetric NAT: {private} is seen as {symmetric:?}");
    assert_eq!(symmetric.len(), 2);
    assert!(symmetric.iter().all(|a| a.ip() == public));
    assert_ne!(
        symmetric[0].port(),
        symmetric[1].port(),
        "a new port per destination"
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn dropping_the_lab_deletes_its_namespaces_and_what_runs_in_them() {
    let lab = Lab::builder()
        .prefix("nltdrop")
        .site("a", Nat::Cone)
        .site("b", Nat::None)
        .build()
        .unwrap();
    let prefix = lab.prefix().to_owned();
    let names = fast_rtc_netlab::list(&prefix).unwrap();
    assert_eq!(names.len(), 3, "a, a's NAT and b: {names:?}");
    let mut sleeper = lab
        .site("a")
        .unwrap()
        .command("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    // A thread of this process inside a site: it binds there, and its own threads are there.
    let b = lab.site("b").unwrap().clone();
    let addr = b.addr();
    let bound = lab
        .site("b")
        .unwrap()
        .spawn(move || std::thread::spawn(move || UdpSocket::bind((addr, 0))).join())
        .unwrap()
        .join()
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(bound.ip(), b.addr());
    drop(lab);
    assert!(fast_rtc_netlab::list(&prefix).unwrap().is_empty());
    // Killed by the teardown, not by us.
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "{status:?}");

    // A description the lab refuses makes nothing.
    let bad = Lab::builder()
        .prefix("nltdrop")
        .site("a", Nat::None)
        .link("a", "nowhere", LinkSpec::IDEAL)
        .build();
    assert!(
        matches!(bad, Err(fast_rtc_netlab::LabError::NoSuchSite(_))),
        "{bad:?}"
    );
    assert!(fast_rtc_netlab::list("nltdrop").unwrap().is_empty());
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn a_lab_that_fails_half_way_deletes_what_it_made() {
    // Learn this process's next lab number, then make the namespace its second site would
    // take (for the next 20 numbers, in case other tests build labs meanwhile).
    let probe = Lab::builder()
        .prefix("nltfail")
        .site("a", Nat::None)
        .build()
        .unwrap();
    let n: u32 = probe.sites()[0].namespace()["nltfailx".len()..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    drop(probe);
    let squatters: Vec<String> = (n + 1..=n + 20)
        .map(|k| format!("nltfailx{k}-b-nat"))
        .collect();
    for name in &squatters {
        let status = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // Site a (behind a NAT: two namespaces, a veth pair, nftables, a TUN device) is made,
    // then site b's NAT namespace exists already: the build fails.
    let failed = Lab::builder()
        .prefix("nltfail")
        .site("a", Nat::Cone)
        .site("b", Nat::Symmetric)
        .build();
    let left = fast_rtc_netlab::list("nltfail").unwrap();
    for name in &squatters {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .status();
    }
    let err = failed.unwrap_err();
    println!("a lab that fails half-way: {err}");
    assert!(
        matches!(err, fast_rtc_netlab::LabError::Command { .. }),
        "{err}"
    );
    let mut left: Vec<&String> = left.iter().filter(|n| !squatters.contains(n)).collect();
    left.sort();
    assert!(left.is_empty(), "left behind: {left:?}");
}
