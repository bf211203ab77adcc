//! The Kinesis API's schema constraints (lengths, patterns, ranges), checked by the service so
//! that every surface reports them the same way: `ValidationException` with AWS's wording.

use super::error::DsError;

fn shown(s: &str) -> String {
    s.chars().take(1024).collect()
}

/// How Kinesis shows a blob's value in a violation: `java.nio.HeapByteBuffer[pos=0 lim=N cap=N]`.
pub fn byte_buffer(len: usize) -> String {
    format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]")
}

/// `Value '…' at 'member' failed to satisfy constraint: …`
pub fn violation(value: &str, member: &str, constraint: &str) -> DsError {
    DsError::Validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: {constraint}",
        shown(value)
    ))
}

/// The schema violations of one request, reported together in one `ValidationException` as
/// AWS does (`2 validation errors detected: Value … ; Value …`), in the order checked. Each
/// entry is (how many violations, their text joined by `; `).
#[derive(Debug, Default)]
pub struct Violations(Vec<(usize, String)>);

impl Violations {
    /// Keeps `r`'s violations and answers `None`; any other error is returned at once.
    pub fn check<T>(&mut self, r: Result<T, DsError>) -> Result<Option<T>, DsError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(DsError::Validation(m)) => {
                self.0.push(split_count(&m));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One violated constraint of `member`, whose value is shown as `value`.
    pub fn push(&mut self, value: &str, member: &str, constraint: &str) {
        self.0.push((
            1,
            format!(
                "Value '{}' at '{member}' failed to satisfy constraint: {constraint}",
                shown(value)
            ),
        ));
    }

    /// Keeps the violations of a check that can only fail validation.
    fn keep(&mut self, r: Result<(), DsError>) {
        if let Err(DsError::Validation(m)) = r {
            self.0.push(split_count(&m));
        }
    }

    /// A member that must be given.
    fn given<T>(&mut self, member: &str, value: Option<T>, required: bool) -> Option<T> {
        if value.is_none() && required {
            self.null(member);
        }
        value
    }

    /// A name member (`[a-zA-Z0-9_.-]+`, 1–`max` characters).
    pub fn name(&mut self, member: &str, value: Option<&str>, required: bool, max: usize) {
        if let Some(s) = self.given(member, value, required) {
            self.keep(name(s, member, max));
        }
    }

    /// A string member of `min`–`max` characters.
    pub fn length(
        &mut self,
        member: &str,
        value: Option<&str>,
        required: bool,
        (min, max): (usize, usize),
    ) {
        if let Some(s) = self.given(member, value, required) {
            self.keep(length(s, member, min, max));
        }
    }

    /// A decimal member of at most `digits` digits (hash keys, sequence numbers).
    pub fn decimal(&mut self, member: &str, value: Option<&str>, required: bool, digits: usize) {
        if let Some(s) = self.given(member, value, required) {
            self.keep(decimal(s, member, digits));
        }
    }

    /// An integer member within `min`–`max`.
    pub fn range(
        &mut self,
        member: &str,
        value: Option<i64>,
        required: bool,
        (min, max): (i64, i64),
    ) {
        if let Some(n) = self.given(member, value, required) {
            self.keep(range(n, member, min, max));
        }
    }

    /// A string member from `set` (shown in the message as `shown`, Kinesis's order).
    pub fn one_of(
        &mut self,
        member: &str,
        value: Option<&str>,
        required: bool,
        set: &[&str],
        shown: &str,
    ) {
        if let Some(s) = self.given(member, value, required)
            && !set.contains(&s)
        {
            self.push(s, member, &format!("Member must satisfy enum value set: [{shown}]"));
        }
    }

    /// A required member that is absent.
    pub fn null(&mut self, member: &str) {
        self.0.push((
            1,
            format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ),
        ));
    }

    /// The `ValidationException`, if any. AWS lists at most ten violations and counts those.
    pub fn finish(self) -> Result<(), DsError> {
        let mut n = 0;
        let mut texts = Vec::new();
        for (count, text) in self.0 {
            if n + count > MAX_LISTED && n > 0 {
                break;
            }
            n += count;
            texts.push(text);
        }
        let text = texts.join("; ");
        match n {
            0 => Ok(()),
            1 => Err(DsError::Validation(format!("1 validation error detected: {text}"))),
            n => Err(DsError::Validation(format!("{n} validation errors detected: {text}"))),
        }
    }
}

/// Violations one `ValidationException` lists.
const MAX_LISTED: usize = 10;

/// `N validation error(s) detected: rest` → (N, rest); any other message counts as one.
fn split_count(m: &str) -> (usize, String) {
    if let Some((n, rest)) = m.split_once(' ')
        && let Ok(n) = n.parse::<usize>()
        && let Some(rest) = rest
            .strip_prefix("validation errors detected: ")
            .or_else(|| rest.strip_prefix("validation error detected: "))
    {
        return (n, rest.to_owned());
    }
    (1, m.to_owned())
}

fn length_checks(v: &mut Violations, s: &str, member: &str, min: usize, max: usize) {
    let n = s.chars().count();
    if n < min {
        v.push(s, member, &format!("Member must have length greater than or equal to {min}"));
    }
    if n > max {
        v.push(s, member, &format!("Member must have length less than or equal to {max}"));
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `[a-zA-Z0-9_.-]+`, 1–`max` characters (stream, consumer and shard ids). Every violated
/// constraint is reported, the pattern first, as AWS does (an empty name fails the pattern and
/// the minimum length).
pub fn name(s: &str, member: &str, max: usize) -> Result<(), DsError> {
    let mut v = Violations::default();
    if s.is_empty() || !s.bytes().all(is_name_char) {
        v.push(s, member, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    }
    length_checks(&mut v, s, member, 1, max);
    v.finish()
}

/// A string member's length in characters: `Member must have length greater than or equal to
/// min` and `… less than or equal to max` are separate constraints, as AWS reports them.
pub fn length(s: &str, member: &str, min: usize, max: usize) -> Result<(), DsError> {
    let mut v = Violations::default();
    length_checks(&mut v, s, member, min, max);
    v.finish()
}

/// An integer member's range.
pub fn range(v: i64, member: &str, min: i64, max: i64) -> Result<(), DsError> {
    if v < min {
        return Err(violation(
            &v.to_string(),
            member,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if v > max {
        return Err(violation(
            &v.to_string(),
            member,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A list or map member's size.
pub fn count(n: usize, member: &str, min: usize, max: usize) -> Result<(), DsError> {
    // An empty list shows as `'[]'`; Kinesis shows others by their Java objects, not repeated.
    let value = if n == 0 { " '[]'" } else { "" };
    let bound = if n < min {
        format!("greater than or equal to {min}")
    } else if n > max {
        format!("less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(DsError::Validation(format!(
        "1 validation error detected: Value{value} at '{member}' failed to satisfy constraint: \
         Member must have length {bound}"
    )))
}

/// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`, 1–2048 characters. Returns (region, account, rest
/// after `stream/`).
pub fn stream_arn<'a>(s: &'a str, member: &str) -> Result<(&'a str, &'a str, &'a str), DsError> {
    let bad = || {
        violation(
            s,
            member,
            "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
        )
    };
    if s.is_empty() || s.len() > 2048 {
        return Err(bad());
    }
    let mut parts = s.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(res)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !partition.starts_with("aws")
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let rest = res.strip_prefix("stream/").ok_or_else(bad)?;
    if rest.is_empty() || rest.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok((region, account, rest))
}

/// A decimal member matching `0|([1-9]\d{0,max_digits-1})` (no sign, no leading zero), else
/// `ValidationException` naming the member and the pattern, as Kinesis answers.
pub fn decimal(s: &str, member: &str, max_digits: usize) -> Result<(), DsError> {
    let ok = !s.is_empty()
        && s.len() <= max_digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if ok {
        return Ok(());
    }
    let pattern = format!(
        "Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,{}}})",
        max_digits - 1
    );
    Err(violation(s, member, &pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        let (r, a, rest) =
            stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s1", "StreamARN").unwrap();
        assert_eq!((r, a, rest), ("us-east-1", "000000000000", "s1"));
        let (_, _, rest) = stream_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:1",
            "ConsumerARN",
        )
        .unwrap();
        assert_eq!(rest, "s1/consumer/c:1");
        for bad in
            ["", "arn:aws:kinesis:us-east-1:0:stream/s", "arn:aws:sqs:r:000000000000:stream/s", "x"]
        {
            assert!(matches!(stream_arn(bad, "StreamARN"), Err(DsError::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn every_violated_constraint_is_reported() {
        let e = name("", "streamName", 128).unwrap_err().to_string();
        assert!(e.contains("2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{e}");
        let mut v = Violations::default();
        v.check(name("", "a", 5)).unwrap();
        v.check(length("toolong", "b", 1, 3)).unwrap();
        v.null("c");
        let e = v.finish().unwrap_err().to_string();
        assert!(e.contains("4 validation errors detected: "), "{e}");
        assert!(
            e.ends_with("Value null at 'c' failed to satisfy constraint: Member must not be null"),
            "{e}"
        );
    }

    #[test]
    fn names() {
        assert!(name("a-b.c_1", "StreamName", 128).is_ok());
        assert!(name("", "StreamName", 128).is_err());
        assert!(name(&"a".repeat(129), "StreamName", 128).is_err());
        assert!(name("a/b", "StreamName", 128).is_err());
    }
}
