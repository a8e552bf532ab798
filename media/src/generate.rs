//! Generated media for simulated terminals and consoles: a moving picture
//! in VP8 and a spoken-rhythm tone in Opus, encoded once into a short loop
//! that every simulated call shares and stamps with its own RTP numbers.

use std::sync::Arc;

use bytes::Bytes;
use gamut_core::{Dimensions, EncodeImage, ImageRef, Rgb8};
use gamut_webp::WebpEncoder;

/// Payload bytes per RTP packet: leaves room for the RTP header, header
/// extensions and SRTP's tag under a 1,200-byte datagram.
pub const MAX_PAYLOAD: usize = 1_100;

/// Opus frames are 20 ms at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = 960;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("video encoder: {0}")]
    Video(String),
    #[error("audio encoder: {0}")]
    Audio(String),
}

/// A loop of encoded media, shared by every call of a process.
#[derive(Clone, Debug)]
pub struct MediaLoop {
    /// VP8 key frames.
    pub video: Arc<[Bytes]>,
    /// Opus packets of 20 ms.
    pub audio: Arc<[Bytes]>,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
}

impl MediaLoop {
    /// Encodes `frames` video frames of `width` x `height` at `quality`
    /// (0..=100) and one second of audio per 50 packets, `audio_packets` in all.
    pub fn encode(
        width: u32,
        height: u32,
        fps: u32,
        frames: u32,
        quality: u8,
        audio_packets: u32,
    ) -> Result<MediaLoop, GenerateError> {
        let video = (0..frames)
            .map(|n| video_frame(width, height, n, frames, quality))
            .collect::<Result<Vec<_>, _>>()?;
        let audio = audio_loop(audio_packets)?;
        Ok(MediaLoop {
            video: video.into(),
            audio: audio.into(),
            fps,
            width,
            height,
        })
    }

    /// The loop of a simulated terminal: 320x240, 15 fps, one second.
    pub fn small() -> Result<MediaLoop, GenerateError> {
        MediaLoop::encode(320, 240, 15, 15, 40, 50)
    }
}

/// The RGB picture of frame `n` of `of`: a gradient whose colour drifts, a
/// bright bar sweeping across, and a dark block marking the frame number.
pub fn scene(width: u32, height: u32, n: u32, of: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut px = vec![0u8; w * h * 3];
    let phase = (n * 256 / of.max(1)) as usize;
    let bar = (n as usize * w / of.max(1) as usize) % w.max(1);
    let bar_width = (w / 12).max(4);
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            let in_bar = x >= bar && x < bar + bar_width;
            let (r, g, b) = if in_bar {
                (250, 240, 90)
            } else {
                (
                    ((x * 200 / w.max(1)) + phase / 4) as u8,
                    ((y * 180 / h.max(1)) + 30) as u8,
                    (120 + (phase / 2) % 120) as u8,
                )
            };
            px[i] = r;
            px[i + 1] = g;
            px[i + 2] = b;
        }
    }
    // The frame number as a row of blocks near the bottom.
    let block = (w / 40).max(2);
    for bit in 0..8 {
        if n & (1 << bit) != 0 {
            for y in h.saturating_sub(block * 2)..h.saturating_sub(block) {
                for x in bit * block * 2..bit * block * 2 + block {
                    if x < w {
                        let i = (y * w + x) * 3;
                        px[i..i + 3].copy_from_slice(&[20, 20, 20]);
                    }
                }
            }
        }
    }
    px
}

/// One VP8 key frame: the `VP8 ` chunk of a lossy WebP (RFC 9649 §2.5: a
/// lossy WebP's bitstream is a VP8 key frame, RFC 6386).
pub fn video_frame(
    width: u32,
    height: u32,
    n: u32,
    of: u32,
    quality: u8,
) -> Result<Bytes, GenerateError> {
    let pixels = scene(width, height, n, of);
    let image = ImageRef::<Rgb8>::new(&pixels, Dimensions { width, height })
        .map_err(|e| GenerateError::Video(e.to_string()))?;
    let mut webp = Vec::new();
    WebpEncoder::lossy(quality)
        .encode_image(image, &mut webp)
        .map_err(|e| GenerateError::Video(e.to_string()))?;
    vp8_chunk(&webp)
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| GenerateError::Video("no VP8 chunk in the encoder's output".into()))
}

/// The payload of the first `VP8 ` chunk of a RIFF/WebP file.
pub fn vp8_chunk(webp: &[u8]) -> Option<&[u8]> {
    if webp.get(0..4)? != b"RIFF" || webp.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut at = 12;
    while at + 8 <= webp.len() {
        let fourcc = &webp[at..at + 4];
        let size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().ok()?) as usize;
        let body = webp.get(at + 8..at + 8 + size)?;
        if fourcc == b"VP8 " {
            return Some(body);
        }
        at += 8 + size + (size & 1);
    }
    None
}

/// Splits a VP8 frame into RTP payloads (RFC 7741): each starts with a
/// payload descriptor carrying a 15-bit picture id; S marks the frame's start.
pub fn vp8_packets(frame: &[u8], picture_id: u16) -> Vec<Bytes> {
    let chunk = MAX_PAYLOAD - 4;
    let pid = picture_id & 0x7fff;
    frame
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let mut p = Vec::with_capacity(part.len() + 4);
            // X=1, S on the first packet, partition 0.
            p.push(if i == 0 { 0x90 } else { 0x80 });
            // I=1: a picture id follows.
            p.push(0x80);
            p.push(0x80 | (pid >> 8) as u8);
            p.push(pid as u8);
            p.extend_from_slice(part);
            Bytes::from(p)
        })
        .collect()
}

/// `packets` Opus packets of 20 ms: a 440/660 Hz pair, amplitude-modulated
/// at 4 Hz, with a pause every second, like speech.
pub fn audio_loop(packets: u32) -> Result<Vec<Bytes>, GenerateError> {
    let mut encoder = opus_rs::OpusEncoder::new(48_000, 1, opus_rs::Application::Voip)
        .map_err(|e| GenerateError::Audio(e.to_string()))?;
    encoder.bitrate_bps = 32_000;
    let mut out = Vec::with_capacity(packets as usize);
    let mut buf = vec![0u8; 1_500];
    for p in 0..packets as usize {
        let pcm: Vec<f32> = (0..OPUS_FRAME_SAMPLES)
            .map(|i| {
                let t = (p * OPUS_FRAME_SAMPLES + i) as f32 / 48_000.0;
                let pause = (t % 1.0) > 0.8;
                if pause {
                    return 0.0;
                }
                let envelope = 0.5 + 0.5 * (t * 4.0 * std::f32::consts::TAU).sin();
                let tone = (t * 440.0 * std::f32::consts::TAU).sin()
                    + 0.5 * (t * 660.0 * std::f32::consts::TAU).sin();
                0.25 * envelope * tone
            })
            .collect();
        let n = encoder
            .encode(&pcm, OPUS_FRAME_SAMPLES, &mut buf)
            .map_err(|e| GenerateError::Audio(e.to_string()))?;
        out.push(Bytes::copy_from_slice(&buf[..n]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(vp8: &[u8]) -> Vec<u8> {
        let mut f = b"RIFF".to_vec();
        let size = 4 + 8 + vp8.len() + (vp8.len() & 1);
        f.extend_from_slice(&(size as u32).to_le_bytes());
        f.extend_from_slice(b"WEBP");
        f.extend_from_slice(b"VP8 ");
        f.extend_from_slice(&(vp8.len() as u32).to_le_bytes());
        f.extend_from_slice(vp8);
        if vp8.len() & 1 == 1 {
            f.push(0);
        }
        f
    }

    #[test]
    fn frames_are_vp8_key_frames_an_independent_decoder_reads_and_they_move() {
        let a = video_frame(160, 120, 0, 10, 40).unwrap();
        let b = video_frame(160, 120, 5, 10, 40).unwrap();
        // RFC 6386 §9.1: a key frame has bit 0 clear and the start code 9d 01 2a.
        assert_eq!(a[0] & 1, 0, "a key frame");
        assert_eq!(&a[3..6], &[0x9d, 0x01, 0x2a]);
        let mut pictures = Vec::new();
        for frame in [&a, &b] {
            let mut decoder =
                image_webp::WebPDecoder::new(std::io::Cursor::new(riff(frame))).unwrap();
            assert_eq!(decoder.dimensions(), (160, 120));
            let mut rgb = vec![0u8; decoder.output_buffer_size().unwrap()];
            decoder.read_image(&mut rgb).unwrap();
            pictures.push(rgb);
        }
        let differing = pictures[0]
            .iter()
            .zip(&pictures[1])
            .filter(|(x, y)| x.abs_diff(**y) > 40)
            .count();
        assert!(
            differing > 500,
            "the picture moves: {differing} samples changed"
        );
    }

    #[test]
    fn packets_carry_the_frame_in_order_with_one_start() {
        let frame: Vec<u8> = (0..5_000u32).map(|i| i as u8).collect();
        let packets = vp8_packets(&frame, 0x1234);
        assert!(packets.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(packets.iter().filter(|p| p[0] & 0x10 != 0).count(), 1);
        assert_eq!(packets[0][0] & 0x10, 0x10);
        let rebuilt: Vec<u8> = packets.iter().flat_map(|p| p[4..].to_vec()).collect();
        assert_eq!(rebuilt, frame);
        assert_eq!(
            ((packets[0][2] & 0x7f) as u16) << 8 | packets[0][3] as u16,
            0x1234
        );
    }

    #[test]
    fn audio_is_opus_an_independent_decoder_hears() {
        let packets = audio_loop(10).unwrap();
        assert_eq!(packets.len(), 10);
        let mut decoder = opus_rs::OpusDecoder::new(48_000, 1).unwrap();
        let mut energy = 0.0f32;
        for p in &packets {
            let mut pcm = vec![0f32; OPUS_FRAME_SAMPLES];
            let n = decoder.decode(p, OPUS_FRAME_SAMPLES, &mut pcm).unwrap();
            assert_eq!(n, OPUS_FRAME_SAMPLES);
            energy += pcm.iter().map(|s| s * s).sum::<f32>();
        }
        assert!(energy > 1.0, "the tone is heard: energy {energy}");
    }

    #[test]
    fn only_a_webp_with_a_vp8_chunk_gives_one() {
        assert_eq!(vp8_chunk(b"RIFF\0\0\0\0WEBPVP8L\x01\0\0\0x"), None);
        assert_eq!(vp8_chunk(b"nonsense"), None);
        assert_eq!(vp8_chunk(&riff(b"abc")), Some(&b"abc"[..]));
        // A chunk claiming more than the file holds.
        let mut bad = riff(b"abcd");
        bad[16] = 0xff;
        assert_eq!(vp8_chunk(&bad), None);
    }
}
