//! `codec`: what a game sends every tick, encoded and decoded by bitcode 0.6 (serde) and by
//! postcard 1.1: sizes and nanoseconds per operation.

use crate::util::machine;
use std::time::Instant;

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct PlayerState {
    tick: u32,
    position: [f32; 2],
    velocity: [f32; 2],
    facing: f32,
    health: u8,
    flags: u8,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
enum GameEvent {
    Shot { from: [f32; 2], dir: [f32; 2] },
    Chat(String),
    Scored { player: u32, points: i32 },
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Snapshot {
    tick: u32,
    players: Vec<PlayerState>,
    events: Vec<GameEvent>,
}

fn samples() -> (PlayerState, Snapshot) {
    let player = |i: u32| PlayerState {
        tick: 1_000_000 + i,
        position: [123.25 + i as f32, -47.5],
        velocity: [1.5, -0.25],
        facing: 0.785,
        health: 100 - i as u8,
        flags: 0b101,
    };
    let snapshot = Snapshot {
        tick: 1_000_000,
        players: (0..8).map(player).collect(),
        events: vec![
            GameEvent::Shot {
                from: [1.0, 2.0],
                dir: [0.0, 1.0],
            },
            GameEvent::Chat("gg".into()),
            GameEvent::Scored {
                player: 3,
                points: 10,
            },
        ],
    };
    (player(0), snapshot)
}

fn time_per_op(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(iters)
}

fn codec_row<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
) {
    let iters = 200_000;
    let b = bitcode::serialize(value).unwrap();
    let p = postcard::to_allocvec(value).unwrap();
    assert_eq!(&bitcode::deserialize::<T>(&b).unwrap(), value);
    assert_eq!(&postcard::from_bytes::<T>(&p).unwrap(), value);
    let be = time_per_op(iters, || {
        drop(std::hint::black_box(
            bitcode::serialize(std::hint::black_box(value)).unwrap(),
        ))
    });
    let bd = time_per_op(iters, || {
        drop(std::hint::black_box(
            bitcode::deserialize::<T>(std::hint::black_box(&b)).unwrap(),
        ))
    });
    let pe = time_per_op(iters, || {
        drop(std::hint::black_box(
            postcard::to_allocvec(std::hint::black_box(value)).unwrap(),
        ))
    });
    let pd = time_per_op(iters, || {
        drop(std::hint::black_box(
            postcard::from_bytes::<T>(std::hint::black_box(&p)).unwrap(),
        ))
    });
    println!(
        "| {name:<26} | {:>5} B | {:>6} B | {be:>11.0} | {pe:>12.0} | {bd:>11.0} | {pd:>12.0} |",
        b.len(),
        p.len()
    );
}

/// The `codec` subcommand.
pub fn bench() {
    let (player, snapshot) = samples();
    println!(
        "fast_rtc_bench codec: serde types a game sends each tick; bitcode 0.6 (serde) vs postcard 1.1, ns per op"
    );
    println!("machine: {}", machine());
    println!();
    println!(
        "| message                    | bitcode | postcard | bitcode enc | postcard enc | bitcode dec | postcard dec |"
    );
    println!(
        "|----------------------------|---------|----------|-------------|--------------|-------------|--------------|"
    );
    codec_row("one player state", &player);
    codec_row("8 players + 3 events", &snapshot);
}
