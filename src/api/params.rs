//! Query parameters every API parses the same way: pages (`limit`, `next`), instants and time
//! ranges (`start`, `end`, RFC 3339 or epoch milliseconds).

use crate::clock::Timestamp;
use crate::error::Error;

/// A page size: `limit` or `default`, within 1–10,000.
pub fn parse_limit(limit: Option<usize>, default: usize) -> Result<usize, Error> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > 10_000 {
        return Err(Error::invalid("limit must be between 1 and 10000"));
    }
    Ok(limit)
}

/// A `next` token from a previous page (a decimal position).
pub fn parse_next<T: std::str::FromStr>(next: Option<&str>) -> Result<Option<T>, Error> {
    next.map(|n| {
        n.parse::<T>()
            .map_err(|_| Error::invalid(format!("next: {n:?} is not a token from a previous page")))
    })
    .transpose()
}

/// An optional instant named `what`.
pub fn parse_time(what: &str, v: &Option<String>) -> Result<Option<Timestamp>, Error> {
    v.as_deref()
        .map(|s| Timestamp::parse_api(s).map_err(|e| Error::invalid(format!("{what}: {e}"))))
        .transpose()
}

/// What a range's `end` means, which decides whether `end == start` is a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// `[start, end]` over fragment timestamps (listings, timelines, metadata): `end == start`
    /// selects what is stamped at that instant.
    Closed,
    /// `[start, end)` of media time (playlists, clips): a range must hold time, so `end` must
    /// be after `start`.
    HalfOpen,
}

/// `start` and `end` from a query; either may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl TimeRange {
    pub fn parse(
        start: &Option<String>,
        end: &Option<String>,
        bounds: Bounds,
    ) -> Result<TimeRange, Error> {
        let start = parse_time("start", start)?;
        let end = parse_time("end", end)?;
        if let (Some(s), Some(e)) = (start, end) {
            match bounds {
                Bounds::Closed if e < s => return Err(Error::invalid("end is before start")),
                Bounds::HalfOpen if e <= s => {
                    return Err(Error::invalid("end must be after start"));
                }
                _ => {}
            }
        }
        Ok(TimeRange { start, end })
    }

    /// Both ends, required.
    pub fn required(self) -> Result<(Timestamp, Timestamp), Error> {
        let start = self.start.ok_or_else(|| Error::invalid("start is required"))?;
        let end = self.end.ok_or_else(|| Error::invalid("end is required"))?;
        Ok((start, end))
    }

    pub fn is_open(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn ranges_say_what_end_means() {
        let t = "2026-01-01T00:00:00Z";
        assert!(TimeRange::parse(&s(t), &s(t), Bounds::Closed).is_ok(), "an instant");
        assert!(TimeRange::parse(&s(t), &s(t), Bounds::HalfOpen).is_err(), "holds no time");
        let later = "2026-01-01T00:00:01Z";
        assert!(TimeRange::parse(&s(later), &s(t), Bounds::Closed).is_err());
        assert!(TimeRange::parse(&s(t), &s(later), Bounds::HalfOpen).is_ok());
        assert!(TimeRange::parse(&None, &None, Bounds::HalfOpen).unwrap().is_open());
        let e = TimeRange::parse(&s("yesterday"), &None, Bounds::Closed).unwrap_err();
        assert!(e.message.starts_with("start: "), "{e}");
    }
}
