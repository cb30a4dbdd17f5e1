//! The one-byte header in front of every replicon message on the swarm: which way the message
//! goes (server → client or client → server) and replicon's channel id. It also keeps every
//! data-channel message non-empty (WebRTC stacks may drop empty ones).

/// The header's direction bit: set on messages from the host's server to a client.
const FROM_SERVER: u8 = 0x80;

/// Replicon channels per direction the header can name (ids `0..MAX_CHANNELS`).
pub const MAX_CHANNELS: usize = 0x80;

/// Which way a replicon message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the host's server to one of its clients (a server channel id).
    ToClient,
    /// From a client to the host's server (a client channel id).
    ToServer,
}

/// `message` behind its header, or `None` when `channel` does not fit in the header.
pub fn encode(direction: Direction, channel: usize, message: &[u8]) -> Option<Vec<u8>> {
    let id = u8::try_from(channel)
        .ok()
        .filter(|&c| usize::from(c) < MAX_CHANNELS)?;
    let header = match direction {
        Direction::ToClient => FROM_SERVER | id,
        Direction::ToServer => id,
    };
    let mut out = Vec::with_capacity(message.len() + 1);
    out.push(header);
    out.extend_from_slice(message);
    Some(out)
}

/// The direction, channel id and message of a received frame (`None` if it is empty).
pub fn decode(frame: &[u8]) -> Option<(Direction, usize, &[u8])> {
    let (&header, message) = frame.split_first()?;
    let direction = if header & FROM_SERVER != 0 {
        Direction::ToClient
    } else {
        Direction::ToServer
    };
    Some((direction, usize::from(header & !FROM_SERVER), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_directions_and_every_channel() {
        for direction in [Direction::ToClient, Direction::ToServer] {
            for channel in 0..MAX_CHANNELS {
                let frame = encode(direction, channel, b"abc").unwrap_or_default();
                assert_eq!(decode(&frame), Some((direction, channel, &b"abc"[..])));
            }
        }
    }

    #[test]
    fn an_empty_message_is_one_byte_and_a_too_large_channel_is_refused() {
        assert_eq!(encode(Direction::ToServer, 3, b""), Some(vec![3]));
        assert_eq!(encode(Direction::ToServer, MAX_CHANNELS, b"x"), None);
        assert_eq!(decode(b""), None);
    }
}
