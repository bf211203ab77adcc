//! A cheap RTSP publisher load generator for `scripts/bench-rtsp.sh`: N sessions in one process,
//! each ANNOUNCE/SETUP (TCP interleaved)/RECORD to `rtsp://ADDR/<prefix><i>`, replaying one
//! H.264 fMP4 file, packetized once up front (RFC 6184 single NAL units and FU-A at 1400 bytes),
//! in real time and in a loop, until the duration is over.
//!
//! ```text
//! cargo run --release --example rtsp_load -- ADDR FILE.mp4 SESSIONS SECONDS [PREFIX]
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use mp4_atom::Decode;
use sluice::media::fmp4::{Fmp4Reader, Item, Limits, samples};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One access unit's interleaved RTP packets (already framed with `$`), at its time.
struct Frame {
    at: Duration,
    rtp_ts: u32,
    /// `$`-framed packets, with sequence number placeholders patched per session.
    packets: Vec<Vec<u8>>,
}

struct Clip {
    sdp: String,
    frames: Vec<Frame>,
    length: Duration,
}

fn load(path: &str) -> Result<Clip> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let mut reader = Fmp4Reader::new(Limits::default());
    reader.push(Bytes::from(bytes));
    let mut init = None;
    let mut frames = Vec::new();
    let mut timescale = 90_000u64;
    let mut first_dts = None;
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Init(i) => {
                timescale = u64::from(i.video().context("no video track")?.timescale);
                init = Some(i);
            }
            Item::Fragment(f) => {
                let init = init.as_ref().context("fragment before init")?;
                let vid = init.video().context("no video track")?.track_id;
                for t in samples(init, &f.bytes)? {
                    if t.track_id != vid {
                        continue;
                    }
                    for s in t.samples {
                        let pts = s.presentation_time();
                        let first = *first_dts.get_or_insert(s.decode_time);
                        let at =
                            Duration::from_micros((s.decode_time - first) * 1_000_000 / timescale);
                        let rtp_ts = (pts * 90_000 / timescale) as u32;
                        frames.push((at, rtp_ts, f.bytes.slice(s.range.clone())));
                    }
                }
            }
            Item::FragmentStarted { .. } => {}
        }
    }
    let init = init.context("no init segment")?;
    let mut rd = &init.bytes[..];
    let mut sps_pps = None;
    while !rd.is_empty() {
        match mp4_atom::Any::decode(&mut rd)? {
            mp4_atom::Any::Moov(moov) => {
                for trak in moov.trak {
                    for c in trak.mdia.minf.stbl.stsd.codecs {
                        if let mp4_atom::Codec::Avc1(a) = c {
                            sps_pps = Some((
                                a.avcc.sequence_parameter_sets[0].clone(),
                                a.avcc.picture_parameter_sets[0].clone(),
                            ));
                        }
                    }
                }
            }
            _ => continue,
        }
    }
    let Some((sps, pps)) = sps_pps else { bail!("not an avc1 file") };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=load\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets={},{}\r\na=control:streamid=0\r\n",
        b64(&sps),
        b64(&pps)
    );
    let mut out = Vec::with_capacity(frames.len());
    let mut last_at = Duration::ZERO;
    for (at, rtp_ts, data) in frames {
        let mut nalus = Vec::new();
        let mut d = &data[..];
        while d.len() >= 4 {
            let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
            if n + 4 > d.len() {
                break;
            }
            nalus.push(&d[4..4 + n]);
            d = &d[4 + n..];
        }
        let mut packets = Vec::new();
        let count = nalus.len();
        for (i, nal) in nalus.into_iter().enumerate() {
            let last_nal = i + 1 == count;
            if nal.len() <= 1400 {
                packets.push(rtp(rtp_ts, last_nal, nal));
            } else {
                let (h, body) = (nal[0], &nal[1..]);
                let chunks: Vec<&[u8]> = body.chunks(1400).collect();
                for (j, c) in chunks.iter().enumerate() {
                    let start = if j == 0 { 0x80 } else { 0 };
                    let end = if j + 1 == chunks.len() { 0x40 } else { 0 };
                    let mut p = vec![(h & 0xe0) | 28, start | end | (h & 0x1f)];
                    p.extend_from_slice(c);
                    packets.push(rtp(rtp_ts, last_nal && end != 0, &p));
                }
            }
        }
        last_at = at;
        out.push(Frame { at, rtp_ts, packets });
    }
    let step = out.get(1).map_or(Duration::from_millis(33), |f| f.at);
    Ok(Clip { sdp, frames: out, length: last_at + step })
}

/// A `$`-framed RTP packet on channel 0 (sequence number and timestamp patched when sent).
fn rtp(ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let len = (12 + payload.len()) as u16;
    let mut p = vec![b'$', 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0x80, 96 | if marker { 0x80 } else { 0 }, 0, 0]);
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x5155_4943u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

async fn request(
    sock: &mut TcpStream,
    cseq: &mut u32,
    line: &str,
    headers: &str,
    body: &str,
) -> Result<String> {
    *cseq += 1;
    let msg = format!(
        "{line} RTSP/1.0\r\nCSeq: {cseq}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(msg.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed");
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    if !text.starts_with("RTSP/1.0 200") {
        bail!("{line}: {}", text.lines().next().unwrap_or(""));
    }
    Ok(text)
}

async fn session(addr: String, name: String, clip: Arc<Clip>, run_for: Duration) -> Result<u64> {
    let mut sock = TcpStream::connect(&addr).await?;
    sock.set_nodelay(true)?;
    let url = format!("rtsp://{addr}/{name}");
    let mut cseq = 0;
    let r = request(
        &mut sock,
        &mut cseq,
        &format!("ANNOUNCE {url}"),
        "Content-Type: application/sdp\r\n",
        &clip.sdp,
    )
    .await?;
    let session = r
        .lines()
        .find_map(|l| l.strip_prefix("Session:"))
        .map(|s| s.split(';').next().unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    let sess = format!("Session: {session}\r\n");
    request(
        &mut sock,
        &mut cseq,
        &format!("SETUP {url}/streamid=0"),
        &format!("{sess}Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n"),
        "",
    )
    .await?;
    request(&mut sock, &mut cseq, &format!("RECORD {url}"), &sess, "").await?;
    let start = Instant::now();
    let mut seq: u16 = 0;
    let mut bytes = 0u64;
    let mut batch = Vec::with_capacity(64 * 1024);
    let ts_per_loop = (clip.length.as_micros() * 90 / 1000) as u32;
    let mut lap = 0u32;
    'outer: loop {
        let lap_start = clip.length * lap;
        for f in &clip.frames {
            let at = lap_start + f.at;
            if at >= run_for {
                break 'outer;
            }
            tokio::time::sleep_until(start + at).await;
            batch.clear();
            let ts = f.rtp_ts.wrapping_add(ts_per_loop.wrapping_mul(lap));
            for p in &f.packets {
                let o = batch.len();
                batch.extend_from_slice(p);
                batch[o + 6..o + 8].copy_from_slice(&seq.to_be_bytes());
                batch[o + 8..o + 12].copy_from_slice(&ts.to_be_bytes());
                seq = seq.wrapping_add(1);
            }
            sock.write_all(&batch).await?;
            bytes += batch.len() as u64;
        }
        lap += 1;
    }
    let _ = request(&mut sock, &mut cseq, &format!("TEARDOWN {url}"), &sess, "").await;
    Ok(bytes)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        bail!("usage: rtsp_load ADDR FILE.mp4 SESSIONS SECONDS [PREFIX]");
    }
    let addr = args[1].clone();
    let clip = Arc::new(load(&args[2])?);
    let sessions: usize = args[3].parse()?;
    let secs: u64 = args[4].parse()?;
    let prefix = args.get(5).cloned().unwrap_or_else(|| "load-".into());
    // One worker thread: the generator should cost as little CPU as possible.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..sessions {
            let (addr, clip, name) = (addr.clone(), clip.clone(), format!("{prefix}{i}"));
            tasks.push(tokio::spawn(session(addr, name, clip, Duration::from_secs(secs))));
            // Spread the keyframes of the sessions over time.
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
        let mut total = 0u64;
        let mut failed = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(b)) => total += b,
                Ok(Err(e)) => {
                    failed += 1;
                    eprintln!("session failed: {e:#}");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("session panicked: {e}");
                }
            }
        }
        println!(
            "sessions={sessions} failed={failed} bytes={total} mbit_per_s_per_session={:.2}",
            total as f64 * 8.0 / 1e6 / secs as f64 / sessions.max(1) as f64
        );
        Ok(())
    })
}
