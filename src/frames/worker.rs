//! One decode worker: a dedicated thread owning GStreamer pipelines that it keeps warm between
//! jobs. The decoder is `appsrc ! h26Xparse ! avdec_h26X ! appsink`; a run pushes access units in
//! decode order from a keyframe through the last wanted frame, ends the stream (so the decoder
//! drains its reorder and thread delay), keeps only the wanted frames, and returns the pipeline to
//! READY for the next run. Encoders are `appsrc ! videoconvert ! videoscale ! capsfilter !
//! jpegenc|pngenc ! appsink`; they have no delay, so they stay PLAYING and take one frame at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::{FrameError, ImageFormat, ImageOptions};

/// How long one pipeline step may take before the run is abandoned as a media error.
const STEP_TIMEOUT_SECS: u64 = 20;
/// Largest output edge, in pixels.
pub const MAX_EDGE: u32 = 8192;

/// The video codecs the decoder handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    H264,
    H265,
}

/// What the decoder needs to know about a track: codec, the caps `stream-format` matching the
/// sample entry (`avc`/`avc3`, `hvc1`/`hev1`) and the decoder configuration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    pub codec: VideoCodec,
    pub stream_format: &'static str,
    /// The avcC / hvcC box payload (AVCDecoderConfigurationRecord, HEVCDecoderConfigurationRecord).
    pub codec_data: Bytes,
}

/// One access unit, timed in nanoseconds on the run's own timeline.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub data: Bytes,
    pub pts_ns: u64,
    pub dts_ns: u64,
    pub duration_ns: u64,
}

/// A decoded frame as GStreamer hands it out (buffer + caps).
pub type DecodedFrame = gst::Sample;

/// Frames the appsink callback keeps during a run (std `Mutex`: shared with GStreamer's streaming
/// thread, never held across a wait).
#[derive(Default)]
struct Collect {
    wanted: HashSet<u64>,
    got: HashMap<u64, gst::Sample>,
}

struct Decoder {
    codec: VideoCodec,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// The avdec element, to set `max-threads` per run (read when the codec opens, on PLAYING).
    dec: gst::Element,
    threads: Option<u32>,
    collect: Arc<Mutex<Collect>>,
    caps: Option<gst::Caps>,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

struct Encoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    size: gst::Element,
    enc: gst::Element,
    /// The caps last set on `src` and `size`, to renegotiate only on change.
    in_caps: Option<gst::Caps>,
    out_size: Option<(u32, u32)>,
}

impl Drop for Encoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The pipelines of one worker thread.
#[derive(Default)]
pub struct Worker {
    decoder: Option<Decoder>,
    encoders: HashMap<ImageFormat, Encoder>,
    /// Decoder threads for the next runs (`max-threads`; 0 = one per core). Image sets use 1 per
    /// worker, as every worker is busy and frame threading only adds synchronisation; a single
    /// frame uses all cores, which shortens its latency when the pool is otherwise idle.
    pub decode_threads: u32,
}

fn media(msg: impl Into<String>) -> FrameError {
    FrameError::MediaError(msg.into())
}

fn internal(msg: impl Into<String>) -> FrameError {
    FrameError::Internal(msg.into())
}

fn launch(desc: &str) -> Result<gst::Pipeline, FrameError> {
    gst::parse::launch(desc)
        .map_err(|e| internal(format!("cannot build pipeline `{desc}`: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| internal(format!("`{desc}` is not a pipeline")))
}

fn element<T: IsA<gst::Element>>(p: &gst::Pipeline, name: &str) -> Result<T, FrameError> {
    p.by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or_else(|| internal(format!("pipeline has no element {name} of the expected type")))
}

/// The first error message waiting on a pipeline's bus, if any.
fn bus_error(p: &gst::Pipeline) -> Option<String> {
    let bus = p.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
        }
    }
    None
}

impl Worker {
    /// Loads the H.264 decoder and the JPEG encoder so the first request does not pay for it.
    pub fn warm(&mut self) {
        let started = std::time::Instant::now();
        if let Err(e) = self.decoder_for(VideoCodec::H264) {
            tracing::warn!(error = %e, "could not warm the H.264 decoder");
        }
        if let Err(e) = self.encoder_for(ImageFormat::Jpeg) {
            tracing::warn!(error = %e, "could not warm the JPEG encoder");
        }
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "frame worker warmed");
    }

    fn decoder_for(&mut self, codec: VideoCodec) -> Result<&mut Decoder, FrameError> {
        if self.decoder.as_ref().is_some_and(|d| d.codec != codec) {
            self.decoder = None;
        }
        if self.decoder.is_none() {
            self.decoder = Some(build_decoder(codec)?);
        }
        self.decoder.as_mut().ok_or_else(|| internal("decoder missing"))
    }

    fn encoder_for(&mut self, format: ImageFormat) -> Result<&mut Encoder, FrameError> {
        match self.encoders.entry(format) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => Ok(v.insert(build_encoder(format)?)),
        }
    }

    /// Decodes `aus` (decode order, starting with a keyframe) and returns the frames whose PTS is
    /// in `wanted`. A wanted frame the decoder did not produce is missing from the map.
    pub fn decode(
        &mut self,
        config: &DecoderConfig,
        aus: &[AccessUnit],
        wanted: &[u64],
    ) -> Result<HashMap<u64, DecodedFrame>, FrameError> {
        let result = self.decode_once(config, aus, wanted);
        if matches!(result, Err(FrameError::MediaError(_)) | Err(FrameError::Internal(_))) {
            // A failed pipeline may be left in an odd state: start the next run from a new one.
            self.decoder = None;
        }
        result
    }

    fn decode_once(
        &mut self,
        config: &DecoderConfig,
        aus: &[AccessUnit],
        wanted: &[u64],
    ) -> Result<HashMap<u64, DecodedFrame>, FrameError> {
        let threads = self.decode_threads;
        let dec = self.decoder_for(config.codec)?;
        let media_type = match config.codec {
            VideoCodec::H264 => "video/x-h264",
            VideoCodec::H265 => "video/x-h265",
        };
        let caps = gst::Caps::builder(media_type)
            .field("stream-format", config.stream_format)
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(config.codec_data.clone()))
            .build();
        if dec.caps.as_ref() != Some(&caps) {
            dec.src.set_caps(Some(&caps));
            dec.caps = Some(caps);
        }
        if dec.threads != Some(threads) {
            // Applies when the codec opens, i.e. on the READY -> PLAYING below.
            dec.dec.set_property("max-threads", threads as i32);
            dec.threads = Some(threads);
        }
        {
            let mut c = dec.collect.lock().unwrap_or_else(|p| p.into_inner());
            c.wanted = wanted.iter().copied().collect();
            c.got.clear();
        }
        dec.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| internal(format!("decoder does not start: {e}")))?;
        for au in aus {
            let mut buf = gst::Buffer::from_slice(au.data.clone());
            if let Some(b) = buf.get_mut() {
                b.set_pts(gst::ClockTime::from_nseconds(au.pts_ns));
                b.set_dts(gst::ClockTime::from_nseconds(au.dts_ns));
                b.set_duration(gst::ClockTime::from_nseconds(au.duration_ns));
            }
            if let Err(flow) = dec.src.push_buffer(buf) {
                let detail = bus_error(&dec.pipeline).unwrap_or_default();
                let _ = dec.pipeline.set_state(gst::State::Ready);
                return Err(media(format!("the decoder refused the data ({flow:?}) {detail}")));
            }
        }
        let _ = dec.src.end_of_stream();
        let bus = dec.pipeline.bus().ok_or_else(|| internal("pipeline without a bus"))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(STEP_TIMEOUT_SECS),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let outcome = match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => Err(media(format!(
                "decoding failed: {} ({})",
                e.error(),
                e.debug().unwrap_or_default()
            ))),
            _ => Err(media("the decoder did not finish in time")),
        };
        let got = std::mem::take(&mut dec.collect.lock().unwrap_or_else(|p| p.into_inner()).got);
        dec.pipeline
            .set_state(gst::State::Ready)
            .map_err(|e| internal(format!("decoder does not reset: {e}")))?;
        outcome.map(|()| got)
    }

    /// Encodes one decoded frame, scaled as `opts` asks.
    pub fn encode(
        &mut self,
        frame: &DecodedFrame,
        opts: &ImageOptions,
    ) -> Result<(Bytes, u32, u32), FrameError> {
        let in_caps =
            frame.caps().ok_or_else(|| internal("decoded frame without caps"))?.to_owned();
        let info = gst_video::VideoInfo::from_caps(&in_caps)
            .map_err(|e| internal(format!("decoded frame caps: {e}")))?;
        let (w, h) = output_size(info.width(), info.height(), info.par(), opts)?;
        let buffer = frame.buffer_owned().ok_or_else(|| internal("decoded frame without data"))?;
        let result = self.encode_once(&in_caps, buffer, w, h, opts);
        if result.is_err() {
            self.encoders.remove(&opts.format);
        }
        result.map(|b| (b, w, h))
    }

    fn encode_once(
        &mut self,
        in_caps: &gst::Caps,
        buffer: gst::Buffer,
        w: u32,
        h: u32,
        opts: &ImageOptions,
    ) -> Result<Bytes, FrameError> {
        let enc = self.encoder_for(opts.format)?;
        if enc.in_caps.as_ref() != Some(in_caps) {
            enc.src.set_caps(Some(in_caps));
            enc.in_caps = Some(in_caps.clone());
        }
        if enc.out_size != Some((w, h)) {
            let caps = gst::Caps::builder("video/x-raw")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build();
            enc.size.set_property("caps", &caps);
            enc.out_size = Some((w, h));
        }
        if opts.format == ImageFormat::Jpeg {
            enc.enc.set_property("quality", i32::from(opts.quality.clamp(1, 100)));
        }
        enc.src
            .push_buffer(buffer)
            .map_err(|f| internal(format!("encoder refused the frame ({f:?})")))?;
        let sample = enc
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(STEP_TIMEOUT_SECS))
            .ok_or_else(|| {
                internal(format!(
                    "the encoder produced no image: {}",
                    bus_error(&enc.pipeline).unwrap_or_else(|| "timeout".to_owned())
                ))
            })?;
        let out = sample.buffer().ok_or_else(|| internal("encoded sample without data"))?;
        let map = out.map_readable().map_err(|_| internal("encoded image is not readable"))?;
        Ok(Bytes::copy_from_slice(map.as_slice()))
    }
}

/// The output size: the decoded display size, or the requested one; with only one edge given,
/// the other keeps the display aspect ratio (pixel aspect ratio applied).
pub fn output_size(
    w: u32,
    h: u32,
    par: gst::Fraction,
    opts: &ImageOptions,
) -> Result<(u32, u32), FrameError> {
    let (pn, pd) = (par.numer().max(1) as u64, par.denom().max(1) as u64);
    // Display aspect = w*pn / (h*pd).
    let (dw, dh) = (u64::from(w) * pn, u64::from(h) * pd);
    let (ow, oh) = match (opts.width, opts.height) {
        (Some(ow), Some(oh)) => (u64::from(ow), u64::from(oh)),
        (Some(ow), None) => (u64::from(ow), (u64::from(ow) * dh + dw / 2) / dw.max(1)),
        (None, Some(oh)) => ((u64::from(oh) * dw + dh / 2) / dh.max(1), u64::from(oh)),
        (None, None) => ((u64::from(w) * pn + pd / 2) / pd, u64::from(h)),
    };
    let (ow, oh) = (ow.max(1), oh.max(1));
    if ow > u64::from(MAX_EDGE) || oh > u64::from(MAX_EDGE) {
        return Err(FrameError::Invalid(format!(
            "the output would be {ow}x{oh}; the largest edge allowed is {MAX_EDGE}"
        )));
    }
    Ok((ow as u32, oh as u32))
}

fn build_decoder(codec: VideoCodec) -> Result<Decoder, FrameError> {
    let (parse, dec) = match codec {
        VideoCodec::H264 => ("h264parse", "avdec_h264"),
        VideoCodec::H265 => ("h265parse", "avdec_h265"),
    };
    // output-corrupt=false: a frame the decoder knows is broken is dropped, so the request gets
    // MEDIA_ERROR instead of a smeared image.
    let desc = format!(
        "appsrc name=src format=time is-live=false ! {parse} ! {dec} name=dec output-corrupt=false ! \
         appsink name=sink sync=false"
    );
    let pipeline = launch(&desc)?;
    let src: gst_app::AppSrc = element(&pipeline, "src")?;
    let sink: gst_app::AppSink = element(&pipeline, "sink")?;
    let dec: gst::Element = element(&pipeline, "dec")?;
    src.set_max_bytes(0);
    offer_video_pool(&sink)?;
    let collect = Arc::new(Mutex::new(Collect::default()));
    let c = collect.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let pts = sample.buffer().and_then(|b| b.pts()).map(|t| t.nseconds());
                if let Some(pts) = pts {
                    let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                    if c.wanted.contains(&pts) {
                        c.got.insert(pts, sample);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline
        .set_state(gst::State::Ready)
        .map_err(|e| internal(format!("decoder pipeline does not start: {e}")))?;
    Ok(Decoder { codec, pipeline, src, dec, threads: None, collect, caps: None })
}

/// Answers the decoder's allocation query on the appsink's behalf with a video buffer pool and
/// `GstVideoMeta` support. Without them avdec cannot decode into its output buffers when the
/// coded height differs from the display height (1088 vs 1080 for 1080p H.264) and copies every
/// decoded picture (about 3 MB at 1080p) into a fresh buffer, wanted or not.
fn offer_video_pool(sink: &gst_app::AppSink) -> Result<(), FrameError> {
    let pad = sink.static_pad("sink").ok_or_else(|| internal("appsink without a sink pad"))?;
    pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Query(q)) = info.data.as_mut()
            && let gst::QueryViewMut::Allocation(a) = q.view_mut()
        {
            let size = a
                .get()
                .0
                .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
                .and_then(|vi| u32::try_from(vi.size()).ok());
            if let Some(size) = size {
                let pool = gst_video::VideoBufferPool::new();
                a.add_allocation_pool(Some(&pool), size, 0, 0);
                a.add_allocation_meta::<gst_video::VideoMeta>(None);
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

fn build_encoder(format: ImageFormat) -> Result<Encoder, FrameError> {
    let enc = match format {
        ImageFormat::Jpeg => "jpegenc name=enc",
        ImageFormat::Png => "pngenc name=enc snapshot=false",
    };
    let desc = format!(
        "appsrc name=src format=time is-live=false ! videoconvert ! videoscale ! \
         capsfilter name=size ! {enc} ! appsink name=sink sync=false"
    );
    let pipeline = launch(&desc)?;
    let src: gst_app::AppSrc = element(&pipeline, "src")?;
    let sink: gst_app::AppSink = element(&pipeline, "sink")?;
    let size: gst::Element = element(&pipeline, "size")?;
    let enc: gst::Element = element(&pipeline, "enc")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| internal(format!("encoder pipeline does not start: {e}")))?;
    Ok(Encoder { pipeline, src, sink, size, enc, in_caps: None, out_size: None })
}

/// Initializes GStreamer once per process.
pub fn init() -> Result<(), FrameError> {
    gst::init().map_err(|e| internal(format!("GStreamer does not initialize: {e}")))
}
