//! KVS notification configuration (Update/DescribeNotificationConfiguration) onto Sluice's
//! fragment notifications (`crate::notify`).
//!
//! KVS sends notifications to an SNS topic (`DestinationConfig.Uri` an SNS topic ARN). Sluice
//! writes every notification as a `FragmentNotification` event into `sluice-events` and, for an
//! `http(s)://` URI, also POSTs KVS's message to it (checked by the outbound policy with auth on);
//! any other URI of the model's form (an SNS ARN) is kept and gets the events only. A null
//! `NotificationConfiguration` removes the configuration; `Status: DISABLED` keeps it, silent.

use serde_json::{Value, json};

use super::KvsError;
use super::control::{Ctx, finish, string, structure};
use crate::config::Action;
use crate::datastream::validate::Violations;
use crate::notify::NotificationConfig;

/// The model's `DestinationUri` pattern: `^[a-zA-Z_0-9]+:(//)?([^/]+)/?([^*]*)$`.
fn uri_pattern_ok(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let scheme_ok =
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let host = rest.split('/').next().unwrap_or("");
    scheme_ok && !host.is_empty() && !rest.contains('*')
}

pub async fn update(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let conf = structure(body, "NotificationConfiguration")?;
    let config = match conf {
        None => None,
        Some(c) => Some(config_of(c)?),
    };
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("UpdateNotificationConfiguration", Action::Admin, s.name.as_str())?;
    if let Some(url) = config.as_ref().and_then(NotificationConfig::webhook) {
        ctx.state.check_webhook("NotificationConfiguration.DestinationConfig.Uri", url).await?;
    }
    ctx.state.notifications.set(&s, config).await?;
    Ok(json!({}))
}

fn config_of(c: &Value) -> Result<NotificationConfig, KvsError> {
    let status = string(c, "Status")?;
    let dest = structure(c, "DestinationConfig")?;
    let p = "notificationConfiguration";
    let mut v = Violations::default();
    v.one_of(&format!("{p}.status"), status, true, &["ENABLED", "DISABLED"], "ENABLED, DISABLED");
    let uri = match dest {
        None => {
            v.null(&format!("{p}.destinationConfig"));
            None
        }
        Some(d) => {
            let uri = string(d, "Uri")?;
            let member = format!("{p}.destinationConfig.uri");
            v.length(&member, uri, true, (1, 255));
            if let Some(u) = uri.filter(|u| !uri_pattern_ok(u)) {
                v.push(
                    u,
                    &member,
                    "Member must satisfy regular expression pattern: ^[a-zA-Z_0-9]+:(//)?([^/]+)/?([^*]*)$",
                );
            }
            uri
        }
    };
    finish(v)?;
    Ok(NotificationConfig {
        enabled: status == Some("ENABLED"),
        uri: uri.unwrap_or_default().to_owned(),
    })
}

pub fn describe(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("DescribeNotificationConfiguration", Action::Read, s.name.as_str())?;
    let Some(c) = ctx.state.notifications.get(&s) else {
        return Ok(json!({}));
    };
    Ok(json!({
        "NotificationConfiguration": {
            "Status": if c.enabled { "ENABLED" } else { "DISABLED" },
            "DestinationConfig": { "Uri": c.uri },
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_follow_the_model_pattern() {
        for ok in [
            "arn:aws:sns:us-west-2:123456789012:topic",
            "https://hooks.example/kvs",
            "http://10.0.0.2:8080/x",
        ] {
            assert!(uri_pattern_ok(ok), "{ok}");
        }
        for bad in ["", "no-scheme", "https://", "http://h/*", "sch eme://h"] {
            assert!(!uri_pattern_ok(bad), "{bad}");
        }
    }
}
