//! The Kinesis API's schema constraints (lengths, patterns, ranges), checked by the service so
//! that every surface reports them the same way: `ValidationException` with AWS's wording.

use super::error::DsError;

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `Value '…' at 'member' failed to satisfy constraint: …`
pub fn violation(value: &str, member: &str, constraint: &str) -> DsError {
    DsError::Validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: {constraint}",
        shown(value)
    ))
}

/// The schema violations of one request, reported together in one `ValidationException` as
/// AWS does (`2 validation errors detected: Value … ; Value …`), in the order checked.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

const ONE: &str = "1 validation error detected: ";

impl Violations {
    /// Keeps `r`'s violation and answers `None`; any other error is returned at once.
    pub fn check<T>(&mut self, r: Result<T, DsError>) -> Result<Option<T>, DsError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(DsError::Validation(m)) => {
                self.0.push(m.strip_prefix(ONE).map_or(m.clone(), str::to_owned));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A required member that is absent.
    pub fn null(&mut self, member: &str) {
        self.0.push(format!(
            "Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ));
    }

    pub fn finish(self) -> Result<(), DsError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(DsError::Validation(format!("{ONE}{}", self.0[0]))),
            n => Err(DsError::Validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `[a-zA-Z0-9_.-]+`, 1–`max` characters (stream, consumer and shard ids).
pub fn name(s: &str, member: &str, max: usize) -> Result<(), DsError> {
    if s.is_empty() || s.len() > max {
        return Err(violation(
            s,
            member,
            &format!(
                "Member must have length less than or equal to {max} and greater than or equal to 1"
            ),
        ));
    }
    if !s.bytes().all(is_name_char) {
        return Err(violation(
            s,
            member,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// A string member's length in characters.
pub fn length(s: &str, member: &str, min: usize, max: usize) -> Result<(), DsError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(violation(
            s,
            member,
            &format!(
                "Member must have length less than or equal to {max} and greater than or equal to {min}"
            ),
        ));
    }
    Ok(())
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

/// A list member's size.
pub fn count(n: usize, member: &str, min: usize, max: usize) -> Result<(), DsError> {
    if n < min || n > max {
        return Err(DsError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must have length less than or equal to {max} and greater than or equal to {min}"
        )));
    }
    Ok(())
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
    fn names() {
        assert!(name("a-b.c_1", "StreamName", 128).is_ok());
        assert!(name("", "StreamName", 128).is_err());
        assert!(name(&"a".repeat(129), "StreamName", 128).is_err());
        assert!(name("a/b", "StreamName", 128).is_err());
    }
}
