//! Adding a query parameter to every URI of a playlist: the playback-session token travels this
//! way, so a player that cannot send headers (Safari's native HLS, VLC, ffmpeg) carries it on
//! every request it derives from the playlist — media playlists, segments, parts, preload hints,
//! init segments and rendition reports.

/// `playlist` with `param` (`name=value`, already URL-safe) appended to every URI line and every
/// `URI="…"` attribute.
pub fn with_query(playlist: &str, param: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    for line in playlist.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b.strip_suffix('\r').unwrap_or(b), &line[b.trim_end_matches('\r').len()..]),
            None => (line, ""),
        };
        if body.is_empty() {
            out.push_str(line);
        } else if !body.starts_with('#') {
            out.push_str(&append(body, param));
            out.push_str(end);
        } else {
            out.push_str(&attributes(body, param));
            out.push_str(end);
        }
    }
    out
}

fn append(uri: &str, param: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{param}")
}

/// A tag line with each `URI="…"` attribute extended.
fn attributes(line: &str, param: &str) -> String {
    let mut out = String::with_capacity(line.len() + param.len() + 1);
    let mut rest = line;
    while let Some(i) = rest.find("URI=\"") {
        let start = i + 5;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find('"') {
            Some(end) => {
                out.push_str(&append(&after[..end], param));
                rest = &after[end..];
            }
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_gets_the_parameter() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"init/1/0.mp4\"\n#EXT-X-PART:DURATION=0.2,URI=\"part/1/3.m4s\",INDEPENDENT=YES\n\
                 #EXTINF:1.0,\nseg/1/0-2.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/1/4.m4s\"\n\
                 #EXT-X-RENDITION-REPORT:URI=\"live.m3u8?pdt=1\",LAST-MSN=3\n\nindex.m3u8?mode=on_demand\r\n#EXT-X-ENDLIST";
        let q = with_query(p, "token=abc");
        assert_eq!(
            q,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init/1/0.mp4?token=abc\"\n#EXT-X-PART:DURATION=0.2,URI=\"part/1/3.m4s?token=abc\",INDEPENDENT=YES\n\
             #EXTINF:1.0,\nseg/1/0-2.m4s?token=abc\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/1/4.m4s?token=abc\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"live.m3u8?pdt=1&token=abc\",LAST-MSN=3\n\nindex.m3u8?mode=on_demand&token=abc\r\n#EXT-X-ENDLIST"
        );
        assert_eq!(with_query("#X:URI=\"unterminated", "t=1"), "#X:URI=\"unterminated");
        assert_eq!(with_query("", "t=1"), "");
    }
}
