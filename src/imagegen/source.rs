//! Where generated images come from: [`ImageSource`], implemented by the decode service
//! (`crate::frames::Frames`) and by fakes in unit tests, so the scheduler is tested without
//! GStreamer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use super::spec::{ImageGenerationSpec, OutputFormat};
use crate::clock::{Timestamp, TimestampKind};
use crate::frames::{FrameError, Frames, Image, ImageFormat, ImageOptions};
use crate::video::VideoStream;

/// Why an instant produced no image, as the scheduler needs to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// Nothing is on display at the instant (a gap, or data removed by retention): move on.
    NoMedia,
    /// The decoders are saturated: wait this long and ask again for the same instant.
    Busy(Duration),
    /// The media at the instant cannot be rendered: counted, reported, and skipped.
    Failed(String),
}

impl From<FrameError> for SourceError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::NoMedia(_) => SourceError::NoMedia,
            FrameError::Busy { retry_after } => SourceError::Busy(retry_after),
            other => SourceError::Failed(other.to_string()),
        }
    }
}

/// One result per asked instant, in order.
pub type ImageStream =
    Pin<Box<dyn Stream<Item = (Timestamp, Result<Image, SourceError>)> + Send + 'static>>;

/// Renders images of a stream at instants.
pub trait ImageSource: Send + Sync + 'static {
    fn images(
        &self,
        stream: Arc<VideoStream>,
        instants: Vec<Timestamp>,
        clock: TimestampKind,
        opts: ImageOptions,
    ) -> ImageStream;
}

/// The production source: the GStreamer decode pool.
pub struct FramesSource(pub Arc<Frames>);

impl ImageSource for FramesSource {
    fn images(
        &self,
        stream: Arc<VideoStream>,
        instants: Vec<Timestamp>,
        clock: TimestampKind,
        opts: ImageOptions,
    ) -> ImageStream {
        Box::pin(
            self.0
                .images(stream, instants.into_iter(), clock, opts)
                .map(|(t, r)| (t, r.map_err(SourceError::from))),
        )
    }
}

/// The decode options a spec asks for.
pub fn image_options(spec: &ImageGenerationSpec) -> ImageOptions {
    ImageOptions {
        format: match spec.format {
            OutputFormat::Jpeg => ImageFormat::Jpeg,
            OutputFormat::Png => ImageFormat::Png,
        },
        width: spec.width,
        height: spec.height,
        quality: spec.quality,
    }
}
