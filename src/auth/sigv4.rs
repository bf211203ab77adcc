//! AWS Signature Version 4 on the AWS-compatible APIs (Kinesis Data Streams now; Kinesis Video,
//! Firehose next), verified against the access key's secret by `scratchstack-aws-signature`
//! (canonicalization, the signing-key derivation and the ±15 minute clock-skew rule are its; the
//! AWS SigV4 test suite ships with it).
//!
//! Session tokens (`x-amz-security-token`) are temporary AWS credentials Sluice never issues: a
//! request carrying one is refused as an unknown credential, clearly.

use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::DateTime;
use http::request::Parts;
use scratchstack_aws_signature::{
    GetSigningKeyRequest, GetSigningKeyResponse, KSecretKey, NO_ADDITIONAL_SIGNED_HEADERS,
    SignatureError, SignatureOptions, service_for_signing_key_fn, sigv4_validate_request,
};

use super::{Auth, Principal};
use crate::clock::Timestamp;

/// Why a signed request was refused, in the terms AWS's JSON APIs answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No `Authorization` header (nor presigned query).
    Missing,
    /// The access key is unknown (or a session token was sent).
    UnknownKey(String),
    /// The signature does not match, is malformed, or is outside the clock-skew window.
    BadSignature(String),
}

impl SigV4Error {
    /// The exception name Kinesis uses.
    pub fn type_name(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::UnknownKey(_) => "UnrecognizedClientException",
            SigV4Error::BadSignature(_) => "InvalidSignatureException",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            SigV4Error::Missing => "Missing Authentication Token",
            SigV4Error::UnknownKey(m) | SigV4Error::BadSignature(m) => m,
        }
    }

    /// The reason label in `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "missing",
            SigV4Error::UnknownKey(_) => "unknown_principal",
            SigV4Error::BadSignature(_) => "bad_signature",
        }
    }
}

const UNKNOWN: &str = "The security token included in the request is invalid.";

/// Verifies a request signed for `service` (`kinesis`, `kinesisvideo`, `firehose`), returning the
/// access key's principal.
pub async fn verify(
    auth: &Auth,
    parts: &Parts,
    body: Bytes,
    service: &str,
    now: Timestamp,
) -> Result<Arc<Principal>, SigV4Error> {
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(SigV4Error::Missing);
    };
    if parts.headers.contains_key("x-amz-security-token") {
        return Err(SigV4Error::UnknownKey(format!(
            "{UNKNOWN} Sluice does not issue session tokens; sign with an access key alone."
        )));
    }
    let scope = header.to_str().ok().and_then(Scope::parse).ok_or_else(|| {
        SigV4Error::BadSignature("The Authorization header is not an AWS4-HMAC-SHA256 signature with a Credential scope.".to_owned())
    })?;
    let wanted = auth.config().region.as_str();
    if !wanted.is_empty() && scope.region != wanted {
        return Err(SigV4Error::BadSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            scope.region
        )));
    }
    let Some((principal, secret)) = auth.key_secret(&scope.access_key) else {
        return Err(SigV4Error::UnknownKey(UNKNOWN.to_owned()));
    };
    // Defined apart so that its kind is inferred from its body (`Fn`), not from the helper's bound.
    let lookup = move |req: GetSigningKeyRequest| {
        let secret = secret.clone();
        async move {
            let key = KSecretKey::from_str(&secret)?.to_ksigning(
                req.request_date(),
                req.region(),
                req.service(),
            );
            Ok(GetSigningKeyResponse::builder().signing_key(key).build()?)
        }
    };
    let mut get_key = service_for_signing_key_fn(lookup);
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    let server_time = DateTime::from_timestamp_micros(now.as_micros())
        .ok_or_else(|| SigV4Error::BadSignature("the server clock is out of range".to_owned()))?;
    match sigv4_validate_request(
        request,
        &scope.region,
        service,
        &mut get_key,
        server_time,
        &NO_ADDITIONAL_SIGNED_HEADERS,
        SignatureOptions::default(),
    )
    .await
    {
        Ok(_) => Ok(principal),
        Err(e) => Err(match e.downcast_ref::<SignatureError>() {
            Some(SignatureError::InvalidClientTokenId(_)) => SigV4Error::UnknownKey(UNKNOWN.to_owned()),
            Some(SignatureError::SignatureDoesNotMatch(_)) => SigV4Error::BadSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".to_owned(),
            ),
            Some(other) => SigV4Error::BadSignature(other.to_string()),
            None => SigV4Error::BadSignature(e.to_string()),
        }),
    }
}

/// The existing access key a refused signature claimed, for the audit trail (never the text of
/// an unknown one).
pub fn claimed_key(auth: &Auth, parts: &Parts) -> Option<String> {
    let header = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let scope = Scope::parse(header)?;
    auth.key_secret(&scope.access_key).map(|_| scope.access_key)
}

/// The parts of `Credential=<key>/<date>/<region>/<service>/aws4_request` Sluice needs first.
struct Scope {
    access_key: String,
    region: String,
}

impl Scope {
    fn parse(header: &str) -> Option<Scope> {
        let rest = header.strip_prefix("AWS4-HMAC-SHA256")?;
        let cred = rest.split(',').find_map(|p| p.trim().strip_prefix("Credential="))?;
        let mut it = cred.split('/');
        let access_key = it.next()?.to_owned();
        let _date = it.next()?;
        let region = it.next()?.to_owned();
        Some(Scope { access_key, region })
    }
}
