//! A site's address changing mid-run, seen with plain sockets: after [`Lab::rebind`] the
//! NAT's UDP mappings are gone (a packet to the old one is dropped; the host's next packet
//! comes from the new address, on the same port for a cone) while a TCP connection made
//! before lives on; after [`Lab::renumber`] every mapping is gone, TCP too (the host's next
//! segment is refused with a reset), and a site without a NAT has a new address of its own.
//! Needs root: `#[ignore]`d in a plain `cargo test`; `scripts/netlab-test.sh` runs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use fast_rtc_netlab::{Lab, Nat, Site};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(500);

fn udp(site: &Site, port: u16) -> UdpSocket {
    let s = site
        .enter(|| UdpSocket::bind((site.addr(), port)))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// A TCP connection from `client` to `server`: (the client's end, the server's end, the
/// address the server sees).
fn tcp(client: &Site, server: &Site) -> (TcpStream, TcpStream, SocketAddr) {
    let listener = server
        .enter(|| TcpListener::bind((server.addr(), 7100)))
        .unwrap()
        .unwrap();
    let to = server.addr();
    let near = client
        .enter(move || TcpStream::connect((to, 7100)))
        .unwrap()
        .unwrap();
    let (far, seen) = listener.accept().unwrap();
    for s in [&near, &far] {
        s.set_read_timeout(Some(WAIT)).unwrap();
    }
    (near, far, seen)
}

/// `client` sends to `server`; what the server saw it from.
fn seen_from(client: &UdpSocket, server: &UdpSocket) -> SocketAddr {
    client.send_to(b"x", server.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    server.recv_from(&mut buf).unwrap().1
}

/// Whether `to` receives what `from` sends to `addr`.
fn reaches(from: &UdpSocket, addr: SocketAddr, to: &UdpSocket) -> bool {
    from.send_to(b"y", addr).unwrap();
    let mut buf = [0u8; 8];
    to.recv_from(&mut buf).is_ok()
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables, conntrack): scripts/netlab-test.sh"]
fn a_rebound_nat_forgets_its_udp_mappings_and_keeps_tcp() {
    let mut lab = Lab::builder()
        .site("server", Nat::None)
        .site("home", Nat::Cone)
        .build()
        .unwrap();
    let (server, home) = (
        lab.site("server").unwrap().clone(),
        lab.site("home").unwrap().clone(),
    );
    let public = udp(&server, 7001);
    let client = udp(&home, 0);
    let (mut near, mut far, tcp_seen) = tcp(&home, &server);
    let before = seen_from(&client, &public);
    assert_eq!(before.ip(), home.public_addr());
    assert!(reaches(&public, before, &client), "the mapping works");

    let new = lab.rebind("home").unwrap();
    let home = lab.site("home").unwrap();
    assert_eq!(home.udp_public_addr(), new);
    assert_eq!(home.public_addr(), before.ip(), "TCP keeps the address");
    assert!(
        !reaches(&public, before, &client),
        "the old UDP mapping still reaches the host"
    );
    let after = seen_from(&client, &public);
    println!("rebind: UDP {before} became {after}; TCP stays {tcp_seen}");
    assert_eq!(after.ip(), new);
    assert_eq!(after.port(), before.port(), "a cone keeps the host's port");
    assert!(reaches(&public, after, &client), "the new mapping works");

    near.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    far.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here", "the TCP connection survives");
    assert!(
        matches!(
            lab.rebind("server"),
            Err(fast_rtc_netlab::LabError::Invalid(_))
        ),
        "a site without a NAT has nothing to rebind"
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables, conntrack): scripts/netlab-test.sh"]
fn a_renumbered_site_loses_every_mapping_and_its_tcp() {
    let mut lab = Lab::builder()
        .site("server", Nat::None)
        .site("home", Nat::Cone)
        .site("laptop", Nat::None)
        .build()
        .unwrap();
    let (server, home, laptop) = (
        lab.site("server").unwrap().clone(),
        lab.site("home").unwrap().clone(),
        lab.site("laptop").unwrap().clone(),
    );
    let public = udp(&server, 7001);
    let client = udp(&home, 0);
    let (mut near, mut far, _) = tcp(&home, &server);
    let before = seen_from(&client, &public);

    let home_new = lab.renumber("home").unwrap();
    let new = home_new;
    assert_eq!(lab.site("home").unwrap().public_addr(), new);
    assert_eq!(lab.site("home").unwrap().udp_public_addr(), new);
    assert_eq!(
        lab.site("home").unwrap().addr(),
        home.addr(),
        "the LAN stays"
    );
    assert!(!reaches(&public, before, &client), "the old mapping");
    let after = seen_from(&client, &public);
    println!("renumber: UDP {before} became {after}");
    assert_eq!(after.ip(), new);
    assert!(reaches(&public, after, &client), "the new mapping works");

    // The TCP connection's next segment leaves from the new address: the server knows no such
    // connection and resets it; nothing reaches the old one.
    near.write_all(b"lost").unwrap();
    let mut buf = [0u8; 4];
    let mut reset = false;
    for _ in 0..10 {
        match near.read(&mut buf) {
            Ok(0) => {
                reset = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            other => panic!("the connection answered: {other:?}"),
        }
    }
    assert!(reset, "the renumbered host's TCP connection was not reset");
    assert!(
        far.read(&mut buf).is_err(),
        "a segment reached the old connection"
    );

    // Without a NAT the host's own address changes.
    let old = udp(&laptop, 0);
    let new = lab.renumber("laptop").unwrap();
    let laptop = lab.site("laptop").unwrap();
    assert_eq!((laptop.addr(), laptop.public_addr()), (new, new));
    assert!(
        old.send_to(b"z", public.local_addr().unwrap()).is_err()
            || public.recv_from(&mut [0u8; 8]).is_err(),
        "a socket bound to the old address still reaches the server"
    );
    let fresh = udp(laptop, 0);
    assert_eq!(seen_from(&fresh, &public).ip(), new);
    // Twice: the second renumbering replaces the first's address.
    let again = lab.renumber("home").unwrap();
    assert_ne!(again, home_new);
    assert_eq!(seen_from(&client, &public).ip(), again);
}
