//! Just enough of STUN (RFC 8489) to route a connectivity check to its leg:
//! whether a datagram is STUN, and the USERNAME it carries.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER: usize = 20;
const USERNAME: u16 = 0x0006;

/// Whether the datagram looks like STUN (RFC 7983: first byte 0..=3, and the
/// magic cookie).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= HEADER && data[0] < 4 && data[4..8] == MAGIC_COOKIE
}

/// The receiver's ufrag of a connectivity check: the part of USERNAME
/// (`receiver:sender`) before the colon. None when the datagram is not STUN,
/// is malformed, or carries no USERNAME.
pub fn receiver_ufrag(data: &[u8]) -> Option<&str> {
    if !is_stun(data) {
        return None;
    }
    let length = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(HEADER..HEADER + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to 4 bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute before USERNAME, as browsers order them differently.
        attrs.extend_from_slice(&0x0024u16.to_be_bytes());
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[0x6e, 0x7f, 0x1e, 0xff]);
        attrs.extend_from_slice(&USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_receivers_ufrag_names_the_leg() {
        let m = binding_request(b"h0AbCdEfGh:peer");
        assert!(is_stun(&m));
        assert_eq!(receiver_ufrag(&m), Some("h0AbCdEfGh"));
    }

    #[test]
    fn media_and_garbage_are_not_stun() {
        // An RTP packet (version 2) and a DTLS record.
        assert!(!is_stun(&[
            0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8
        ]));
        assert!(!is_stun(&[
            22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]));
        assert_eq!(receiver_ufrag(&[0, 1, 0, 8]), None);
    }

    #[test]
    fn truncated_or_lying_lengths_are_refused_not_read_past() {
        let mut m = binding_request(b"abcd:efgh");
        // Claim a longer body than there is.
        m[3] = 0xff;
        assert_eq!(receiver_ufrag(&m), None);
        let mut m = binding_request(b"abcd:efgh");
        // The USERNAME attribute claims more than the message holds.
        let at = HEADER + 8 + 2;
        m[at] = 0x40;
        assert_eq!(receiver_ufrag(&m), None);
        let m = binding_request(b":efgh");
        assert_eq!(receiver_ufrag(&m), None, "an empty receiver ufrag");
    }
}
