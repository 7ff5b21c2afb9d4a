//! AWS Signature Version 4 verification for the local `@connections` management API.
//!
//! On AWS the management API (`POST`/`GET`/`DELETE /{stage}/@connections/{id}`) only answers
//! requests signed with SigV4 for the service `execute-api`. [`SigV4Verifier`] checks such
//! requests the way API Gateway does, so code that works against the local gateway also signs
//! correctly for AWS, and a gateway bound to a network address does not hand `@connections` to
//! whoever can reach it.
//!
//! # What is checked, in order
//!
//! | step | on failure |
//! | --- | --- |
//! | an `Authorization` header or `X-Amz-*` presigning query parameters are present | [`SigV4Error::MissingAuthenticationToken`] |
//! | the header parses as `key=value` pairs | [`SigV4Error::MalformedAuthorizationPair`] |
//! | `Credential`, `Signature`, `SignedHeaders` and a date (`X-Amz-Date`, else `Date`) are present | [`SigV4Error::MissingAuthorizationComponents`] |
//! | the algorithm is `AWS4-HMAC-SHA256` | [`SigV4Error::UnsupportedAlgorithm`] |
//! | the credential has five `/`-separated parts | [`SigV4Error::MalformedCredential`] |
//! | `host` is a signed header | [`SigV4Error::HostNotSigned`] |
//! | the date is ISO 8601 basic format (`20150830T123600Z`; an RFC 1123 `Date` header is converted) | [`SigV4Error::InvalidDate`] |
//! | the scope ends in `aws4_request`, has the request's day, this region and this service | [`SigV4Error::WrongTerminator`], [`SigV4Error::ScopeDateMismatch`], [`SigV4Error::WrongRegion`], [`SigV4Error::WrongService`] |
//! | the date is within `max_skew` (15 min) of now; a presigned URL is within `X-Amz-Expires` | [`SigV4Error::SignatureExpired`], [`SigV4Error::SignatureNotYetCurrent`], [`SigV4Error::PresignedUrlExpired`] |
//! | the access key id is the configured one | [`SigV4Error::UnknownAccessKey`] |
//! | every signed header is in the request | [`SigV4Error::SignedHeaderMissing`] |
//! | `x-amz-content-sha256`, when sent, is `UNSIGNED-PAYLOAD` or the body's SHA-256 | [`SigV4Error::InvalidContentSha256`], [`SigV4Error::ContentSha256Mismatch`] |
//! | the signature matches (HMAC compared in constant time by `ring::hmac::verify`) | [`SigV4Error::SignatureMismatch`] |
//!
//! # The canonical request
//!
//! As AWS specifies it for every service but S3, and as `aws-sigv4` and botocore build it:
//!
//! - the **canonical URI** is the path as it came on the wire (already percent-encoded), with
//!   dot segments and empty segments removed, then percent-encoded *once more*: every byte but
//!   `A-Za-z0-9-._~` and `/` becomes `%XX`. So `/ws/@connections/L0SM9cOFvHcCIhw%3D` is signed
//!   as `/ws/%40connections/L0SM9cOFvHcCIhw%253D` (the `double-encode-path` case of the AWS
//!   signing test suite, and what the tests below get from `aws-sigv4`);
//! - the **canonical query** decodes each `key=value` (`+` is a space), encodes both again with
//!   the same set (`/` encoded too), sorts the encoded pairs and joins them with `&`; a presigned
//!   request leaves out `X-Amz-Signature`;
//! - the **canonical headers** are the `SignedHeaders`, in the order given, each as
//!   `name:values` with the values trimmed, runs of spaces collapsed, and several values joined
//!   with `,`; `host` falls back to the URI's authority (HTTP/2);
//! - the **payload hash** is `x-amz-content-sha256` when sent (which must then be
//!   `UNSIGNED-PAYLOAD` or the body's hash), else the hex SHA-256 of the body.
//!
//! Session tokens (`x-amz-security-token`) are signed like any header but not checked: the
//! local gateway has one key pair and no STS.
//!
//! # Error answers, and how sure we are of them
//!
//! Every failure answers HTTP 403 with a `x-amzn-ErrorType` header and a `{"message": ...}`
//! body, as API Gateway does; [`SigV4Error::response_parts`] gives the three.
//!
//! Verified against public sources:
//! - no signature: `MissingAuthenticationTokenException`, `Missing Authentication Token`
//!   (AWS knowledge center, "How do I troubleshoot HTTP 403 errors from API Gateway?");
//! - wrong signature: `InvalidSignatureException`, `The request signature we calculated does not
//!   match the signature you provided. Check your AWS Secret Access Key and signing method.
//!   Consult the service documentation for details.` (AWS knowledge center "api-gateway-iam-sigv4-mismatch";
//!   the full text as returned by an `execute-api` endpoint in okigan/awscurl#27);
//! - clock skew: `InvalidSignatureException`, `Signature expired: {signed} is now earlier than
//!   {now - skew} ({now} - 15 min.)` and `Signature not yet current: {signed} is still later than
//!   {now + skew} ({now} + 15 min.)` (IAM user guide, "Troubleshoot signed requests"; the
//!   knowledge center table names the type). API Gateway has been reported answering
//!   `(... - 5 min.)`: the window is [`SigV4Verifier::with_max_skew`];
//! - wrong service: `Credential should be scoped to correct service: 'execute-api'. ` (with
//!   the trailing space; aws/aws-sdk-js-v3#1831 for `ApiGatewayManagementApi`, type
//!   `InvalidSignatureException`);
//! - wrong region: `Credential should be scoped to a valid region, not '{region}'. ` (IAM user
//!   guide; aws/aws-sdk-go#156, aws/aws-sdk-php#493);
//! - malformed header: 403 `IncompleteSignatureException` with `'{pair}' not a valid key=value
//!   pair (missing equal-sign) in Authorization header: '{header}'.` and `Authorization header
//!   requires 'Credential' parameter. [...] Authorization={header}` (API Gateway answers quoted
//!   in aws-amplify/amplify-flutter#1539, aws/chalice#828, serverless/serverless#3205);
//! - scope date: `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date
//!   from HTTP` (IAM user guide; the `: '{a}' != '{b}', from '{c}'.` tail is best knowledge).
//!
//! Best knowledge (no source found that settles it):
//! - unknown access key: the message `The security token included in the request is invalid.`
//!   is verified, but the type is not settled: AWS's API Gateway 403 article lists it as
//!   `AccessDeniedException`, other services send `UnrecognizedClientException`. We send
//!   [`UNKNOWN_ACCESS_KEY_ERROR_TYPE`] (`AccessDeniedException`, following the API Gateway
//!   article);
//! - the `The Canonical String for this request should have been ...` appendix to a signature
//!   mismatch (AWS services send it; its exact layout here is from memory);
//! - `Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601`,
//!   `'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.` and
//!   `Credential should be scoped with a valid terminator: 'aws4_request', not '{t}'. `;
//! - our own wording: unsupported algorithm, malformed credential, both header and query
//!   signatures, presigned-URL problems, `x-amz-content-sha256` problems, a signed header that
//!   is absent.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use http::header::{AUTHORIZATION, CONTENT_TYPE, DATE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use ring::{digest, hmac};
use switchboard_core::names::{env, local_credentials};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service API Gateway's management API is signed for.
pub const EXECUTE_API: &str = "execute-api";
/// The `x-amz-content-sha256` value that leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far the request's date may be from now, in minutes, unless configured otherwise.
pub const DEFAULT_MAX_SKEW_MINUTES: i64 = 15;
/// The `x-amzn-ErrorType` sent for an unknown access key id (see the module docs: unsettled).
pub const UNKNOWN_ACCESS_KEY_ERROR_TYPE: &str = "AccessDeniedException";
/// The longest `X-Amz-Expires` AWS accepts on a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: i64 = 604_800;

const TERMINATOR: &str = "aws4_request";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Verifies SigV4-signed requests for one access key, region and service.
#[derive(Clone)]
pub struct SigV4Verifier {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    service: String,
    max_skew: TimeDelta,
}

impl fmt::Debug for SigV4Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Verifier")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("max_skew", &self.max_skew)
            .finish()
    }
}

impl SigV4Verifier {
    /// A verifier for `execute-api` in `region`, accepting dates up to 15 minutes off.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            region: region.into(),
            service: EXECUTE_API.to_owned(),
            max_skew: TimeDelta::minutes(DEFAULT_MAX_SKEW_MINUTES),
        }
    }

    /// The local stand-in key ([`local_credentials`]): what `AwsSettings::local` and the
    /// tests' SDK clients sign with.
    pub fn local() -> Self {
        Self::new(
            local_credentials::ACCESS_KEY_ID,
            local_credentials::SECRET_ACCESS_KEY,
            local_credentials::REGION,
        )
    }

    /// The key of `cargo run`: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` when both are
    /// set (the credentials the developer's own clients pick up), else [`Self::local`];
    /// the region from `AWS_REGION`, else `us-east-1`.
    pub fn from_env_or_local() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let region = var(env::REGION).unwrap_or_else(|| local_credentials::REGION.to_owned());
        match (var(env::ACCESS_KEY_ID), var(env::SECRET_ACCESS_KEY)) {
            (Some(key), Some(secret)) => Self::new(key, secret, region),
            _ => Self::new(
                local_credentials::ACCESS_KEY_ID,
                local_credentials::SECRET_ACCESS_KEY,
                region,
            ),
        }
    }

    /// The same verifier for another service name (the AWS test suite signs for `service`).
    #[must_use]
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The same verifier with another clock-skew window (negative values count as zero).
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: TimeDelta) -> Self {
        self.max_skew = max_skew.max(TimeDelta::zero());
        self
    }

    /// The access key id requests must be signed with (safe to print).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The region requests must be scoped to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service requests must be scoped to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Checks one request's signature; `uri` is the request target as received (percent-encoded).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SigV4Error> {
        let auth = parse_auth(uri, headers)?;
        self.check_scope(&auth)?;
        self.check_time(&auth, now)?;
        if auth.scope.access_key_id != self.access_key_id {
            return Err(SigV4Error::UnknownAccessKey {
                access_key_id: auth.scope.access_key_id,
            });
        }
        let payload_hash = payload_hash(headers, body)?;
        let canonical_request = canonical_request(method, uri, headers, &auth, &payload_hash)?;
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            auth.date_time,
            auth.scope.as_scope_string(),
            sha256_hex(canonical_request.as_bytes())
        );
        let key = self.signing_key(&auth.scope.date);
        let verified = decode_signature(&auth.signature)
            .is_some_and(|given| hmac::verify(&key, string_to_sign.as_bytes(), &given).is_ok());
        if verified {
            Ok(())
        } else {
            Err(SigV4Error::SignatureMismatch {
                canonical_request,
                string_to_sign,
            })
        }
    }

    fn check_scope(&self, auth: &ParsedAuth) -> Result<(), SigV4Error> {
        let scope = &auth.scope;
        if scope.terminator != TERMINATOR {
            return Err(SigV4Error::WrongTerminator {
                terminator: scope.terminator.clone(),
            });
        }
        let request_day = auth.date_time.get(..8).unwrap_or_default();
        if scope.date != request_day {
            return Err(SigV4Error::ScopeDateMismatch {
                scope_date: scope.date.clone(),
                request_date: request_day.to_owned(),
                date_time: auth.date_time.clone(),
            });
        }
        if scope.region != self.region {
            return Err(SigV4Error::WrongRegion {
                expected: self.region.clone(),
                got: scope.region.clone(),
            });
        }
        if scope.service != self.service {
            return Err(SigV4Error::WrongService {
                expected: self.service.clone(),
                got: scope.service.clone(),
            });
        }
        Ok(())
    }

    fn check_time(&self, auth: &ParsedAuth, now: DateTime<Utc>) -> Result<(), SigV4Error> {
        let signed = auth.date;
        let latest = now
            .checked_add_signed(self.max_skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if signed > latest {
            return Err(SigV4Error::SignatureNotYetCurrent {
                signed: basic(signed),
                latest: basic(latest),
                now: basic(now),
                skew_minutes: self.max_skew.num_minutes(),
            });
        }
        if let Some(expires) = auth.presigned_expires {
            let until = signed
                .checked_add_signed(expires)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if now > until {
                return Err(SigV4Error::PresignedUrlExpired {
                    signed: basic(signed),
                    expires_secs: expires.num_seconds(),
                    now: basic(now),
                });
            }
            return Ok(());
        }
        let earliest = now
            .checked_sub_signed(self.max_skew)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if signed < earliest {
            return Err(SigV4Error::SignatureExpired {
                signed: basic(signed),
                earliest: basic(earliest),
                now: basic(now),
                skew_minutes: self.max_skew.num_minutes(),
            });
        }
        Ok(())
    }

    fn signing_key(&self, day: &str) -> hmac::Key {
        let secret = format!("AWS4{}", self.secret_access_key);
        let mut key = hmac_bytes(secret.as_bytes(), day.as_bytes());
        for part in [self.region.as_str(), self.service.as_str(), TERMINATOR] {
            key = hmac_bytes(&key, part.as_bytes());
        }
        hmac::Key::new(hmac::HMAC_SHA256, &key)
    }
}

/// Why a request's signature was refused; each maps to API Gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigning query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// A comma-separated part of the `Authorization` header has no `=`.
    #[error(
        "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
    )]
    MalformedAuthorizationPair {
        /// The part without `=`.
        pair: String,
        /// The whole header, as received.
        header: String,
    },
    /// Required `Authorization` parameters, or any date header, are missing.
    #[error("{}Authorization={header}", missing_components_text(.missing, *.missing_date))]
    MissingAuthorizationComponents {
        /// The missing parameter names (`Credential`, `Signature`, `SignedHeaders`).
        missing: Vec<&'static str>,
        /// Neither `X-Amz-Date` nor `Date` was sent.
        missing_date: bool,
        /// The whole header, as received.
        header: String,
    },
    /// The algorithm is not `AWS4-HMAC-SHA256`.
    #[error(
        "Unsupported AWS 'algorithm': '{algorithm}'. Only '{}' is accepted.",
        ALGORITHM
    )]
    UnsupportedAlgorithm {
        /// The algorithm sent.
        algorithm: String,
    },
    /// `Credential` is not `AKID/YYYYMMDD/region/service/aws4_request`.
    #[error(
        "Credential is mal-formed; expecting \"<access key id>/YYYYMMDD/REGION/SERVICE/aws4_request\", got '{credential}'."
    )]
    MalformedCredential {
        /// The credential sent.
        credential: String,
    },
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// The date is not in ISO 8601 basic format.
    #[error(
        "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )]
    InvalidDate {
        /// The date sent.
        value: String,
    },
    /// Signed both in the header and in the query string, or with several `Authorization` headers.
    #[error("{reason}")]
    AmbiguousAuthentication {
        /// What was sent twice.
        reason: &'static str,
    },
    /// Presigning query parameters are incomplete or malformed.
    #[error("{reason}")]
    MalformedPresignedQuery {
        /// What is wrong.
        reason: String,
    },
    /// The credential scope does not end in `aws4_request`.
    #[error(
        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
    )]
    WrongTerminator {
        /// The terminator sent.
        terminator: String,
    },
    /// The scope's day is not the request date's day.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_date}', from '{date_time}'."
    )]
    ScopeDateMismatch {
        /// The day in the credential scope.
        scope_date: String,
        /// The day of the request's date.
        request_date: String,
        /// The request's date.
        date_time: String,
    },
    /// The scope names another region.
    #[error("Credential should be scoped to a valid region, not '{got}'. ")]
    WrongRegion {
        /// The region this gateway signs for.
        expected: String,
        /// The region in the credential scope.
        got: String,
    },
    /// The scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The service this gateway signs for.
        expected: String,
        /// The service in the credential scope.
        got: String,
    },
    /// The request's date is more than `max_skew` in the past.
    #[error(
        "Signature expired: {signed} is now earlier than {earliest} ({now} - {skew_minutes} min.)"
    )]
    SignatureExpired {
        /// The request's date.
        signed: String,
        /// The earliest date accepted.
        earliest: String,
        /// The verifier's clock.
        now: String,
        /// The window, in minutes.
        skew_minutes: i64,
    },
    /// The request's date is more than `max_skew` in the future.
    #[error(
        "Signature not yet current: {signed} is still later than {latest} ({now} + {skew_minutes} min.)"
    )]
    SignatureNotYetCurrent {
        /// The request's date.
        signed: String,
        /// The latest date accepted.
        latest: String,
        /// The verifier's clock.
        now: String,
        /// The window, in minutes.
        skew_minutes: i64,
    },
    /// A presigned URL used after `X-Amz-Date` + `X-Amz-Expires`.
    #[error("Signature expired: {signed} + {expires_secs} s is now earlier than {now}.")]
    PresignedUrlExpired {
        /// The URL's date.
        signed: String,
        /// Its lifetime in seconds.
        expires_secs: i64,
        /// The verifier's clock.
        now: String,
    },
    /// Signed with an access key id this gateway does not know.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey {
        /// The access key id sent.
        access_key_id: String,
    },
    /// A header named in `SignedHeaders` is not in the request.
    #[error("{} (Signed header '{name}' is not in the request.)", MISMATCH)]
    SignedHeaderMissing {
        /// The absent header.
        name: String,
    },
    /// `x-amz-content-sha256` is neither a SHA-256 hex digest nor `UNSIGNED-PAYLOAD`.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256 digest, not '{value}'."
    )]
    InvalidContentSha256 {
        /// The value sent.
        value: String,
    },
    /// `x-amz-content-sha256` is not the body's hash (the body was changed after signing).
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// The signature is not the one computed for this request and key.
    #[error(
        "{}\n\nThe Canonical String for this request should have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
        MISMATCH
    )]
    SignatureMismatch {
        /// The canonical request the gateway computed.
        canonical_request: String,
        /// The string to sign the gateway computed.
        string_to_sign: String,
    },
}

impl SigV4Error {
    /// The `x-amzn-ErrorType` API Gateway sends for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::MalformedAuthorizationPair { .. }
            | Self::MissingAuthorizationComponents { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedCredential { .. }
            | Self::HostNotSigned
            | Self::InvalidDate { .. }
            | Self::AmbiguousAuthentication { .. }
            | Self::MalformedPresignedQuery { .. } => "IncompleteSignatureException",
            Self::UnknownAccessKey { .. } => UNKNOWN_ACCESS_KEY_ERROR_TYPE,
            Self::WrongTerminator { .. }
            | Self::ScopeDateMismatch { .. }
            | Self::WrongRegion { .. }
            | Self::WrongService { .. }
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::PresignedUrlExpired { .. }
            | Self::SignedHeaderMissing { .. }
            | Self::InvalidContentSha256 { .. }
            | Self::ContentSha256Mismatch
            | Self::SignatureMismatch { .. } => "InvalidSignatureException",
        }
    }

    /// The HTTP status: API Gateway answers every signature failure with 403.
    pub fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    /// (HTTP status, `x-amzn-ErrorType`, message) as API Gateway sends them.
    pub fn response_parts(&self) -> (StatusCode, &'static str, String) {
        (self.status(), self.error_type(), self.to_string())
    }

    /// The response body: `{"message":"..."}`.
    pub fn json_body(&self) -> String {
        serde_json::json!({ "message": self.to_string() }).to_string()
    }

    /// The whole answer: status, `content-type`, `x-amzn-ErrorType` and the JSON body.
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.json_body());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static(self.error_type()),
        );
        response
    }
}

fn missing_components_text(missing: &[&'static str], missing_date: bool) -> String {
    let mut text = String::new();
    for name in missing {
        text.push_str(&format!(
            "Authorization header requires '{name}' parameter. "
        ));
    }
    if missing_date {
        text.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    text
}

/// The parts of a credential scope: `AKID/20150830/us-east-1/execute-api/aws4_request`.
#[derive(Debug)]
struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
}

impl Scope {
    fn parse(credential: &str) -> Result<Self, SigV4Error> {
        let parts: Vec<&str> = credential.split('/').collect();
        match parts.as_slice() {
            [akid, date, region, service, terminator] if !akid.is_empty() => Ok(Self {
                access_key_id: (*akid).to_owned(),
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
                terminator: (*terminator).to_owned(),
            }),
            _ => Err(SigV4Error::MalformedCredential {
                credential: credential.to_owned(),
            }),
        }
    }

    fn as_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// What the request says about its signature, wherever it said it.
#[derive(Debug)]
struct ParsedAuth {
    scope: Scope,
    signed_headers: String,
    signature: String,
    /// The date as ISO 8601 basic format, as it enters the string to sign.
    date_time: String,
    date: DateTime<Utc>,
    /// `Some` for a presigned URL: its lifetime; the query's signature is then left out.
    presigned_expires: Option<TimeDelta>,
}

fn parse_auth(uri: &Uri, headers: &HeaderMap) -> Result<ParsedAuth, SigV4Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(SigV4Error::AmbiguousAuthentication {
            reason: "Only one Authorization header is allowed.",
        });
    }
    let query = query_pairs(uri.query().unwrap_or_default());
    let presigned = query.iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "X-Amz-Algorithm" | "X-Amz-Signature" | "X-Amz-Credential"
        )
    });
    let header = header
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty());
    match (header, presigned) {
        (Some(_), true) => Err(SigV4Error::AmbiguousAuthentication {
            reason: "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header; sign one way only.",
        }),
        (Some(header), false) => parse_header_auth(&header, headers),
        (None, true) => parse_query_auth(&query),
        (None, false) => Err(SigV4Error::MissingAuthenticationToken),
    }
}

fn parse_header_auth(header: &str, headers: &HeaderMap) -> Result<ParsedAuth, SigV4Error> {
    let (algorithm, rest) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(SigV4Error::MalformedAuthorizationPair {
                pair: part.to_owned(),
                header: header.to_owned(),
            });
        };
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let date_header = header_date(headers);
    let (Some(credential), Some(signed_headers), Some(signature), Some(date_value)) =
        (credential, signed_headers, signature, date_header.as_ref())
    else {
        let missing = [
            ("Credential", credential.is_none()),
            ("Signature", signature.is_none()),
            ("SignedHeaders", signed_headers.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        return Err(SigV4Error::MissingAuthorizationComponents {
            missing,
            missing_date: date_header.is_none(),
            header: header.to_owned(),
        });
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let scope = Scope::parse(credential)?;
    require_host(signed_headers)?;
    let date = parse_date(date_value)?;
    Ok(ParsedAuth {
        scope,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        date_time: basic(date),
        date,
        presigned_expires: None,
    })
}

/// The request's date header: `X-Amz-Date`, else `Date`, with which one it was.
#[derive(Debug)]
enum DateValue {
    AmzDate(String),
    HttpDate(String),
}

fn header_date(headers: &HeaderMap) -> Option<DateValue> {
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    match headers.get(X_AMZ_DATE) {
        Some(v) => Some(DateValue::AmzDate(text(v))),
        None => headers.get(DATE).map(|v| DateValue::HttpDate(text(v))),
    }
}

fn parse_date(value: &DateValue) -> Result<DateTime<Utc>, SigV4Error> {
    let parsed = match value {
        DateValue::AmzDate(v) => parse_basic(v),
        DateValue::HttpDate(v) => parse_basic(v).or_else(|| {
            DateTime::parse_from_rfc2822(v)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        }),
    };
    parsed.ok_or_else(|| SigV4Error::InvalidDate {
        value: match value {
            DateValue::AmzDate(v) | DateValue::HttpDate(v) => v.clone(),
        },
    })
}

/// `20150830T123600Z`, strictly.
fn parse_basic(value: &str) -> Option<DateTime<Utc>> {
    let b = value.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = value.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i32::try_from(digits_at(0..4)?).ok()?;
    let naive = NaiveDate::from_ymd_opt(year, digits_at(4..6)?, digits_at(6..8)?)?.and_hms_opt(
        digits_at(9..11)?,
        digits_at(11..13)?,
        digits_at(13..15)?,
    )?;
    Some(Utc.from_utc_datetime(&naive))
}

fn basic(date: DateTime<Utc>) -> String {
    date.format("%Y%m%dT%H%M%SZ").to_string()
}

fn require_host(signed_headers: &str) -> Result<(), SigV4Error> {
    if signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host") || h == ":authority")
    {
        Ok(())
    } else {
        Err(SigV4Error::HostNotSigned)
    }
}

fn parse_query_auth(query: &[(String, String)]) -> Result<ParsedAuth, SigV4Error> {
    const REQUIRED: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ];
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let [
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(date),
        Some(signed_headers),
        Some(expires),
    ] = REQUIRED.map(get)
    else {
        return Err(SigV4Error::MalformedPresignedQuery {
            reason: format!(
                "AWS query-string parameters must include {}. Re-examine the query-string parameters.",
                REQUIRED.map(|n| format!("'{n}'")).join(", ")
            ),
        });
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let expires = expires
        .parse::<i64>()
        .ok()
        .filter(|s| (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(s))
        .ok_or_else(|| SigV4Error::MalformedPresignedQuery {
            reason: format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS}, not '{expires}'."
            ),
        })?;
    let scope = Scope::parse(credential)?;
    require_host(signed_headers)?;
    let date = parse_date(&DateValue::AmzDate(date.to_owned()))?;
    Ok(ParsedAuth {
        scope,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        date_time: basic(date),
        date,
        presigned_expires: Some(TimeDelta::seconds(expires)),
    })
}

fn payload_hash(headers: &HeaderMap, body: &[u8]) -> Result<String, SigV4Error> {
    let computed = sha256_hex(body);
    let Some(declared) = headers.get(X_AMZ_CONTENT_SHA256) else {
        return Ok(computed);
    };
    let declared = String::from_utf8_lossy(declared.as_bytes())
        .trim()
        .to_owned();
    if declared == UNSIGNED_PAYLOAD {
        return Ok(declared);
    }
    if declared.len() != 64 || !declared.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::InvalidContentSha256 { value: declared });
    }
    if declared.eq_ignore_ascii_case(&computed) {
        Ok(declared)
    } else {
        Err(SigV4Error::ContentSha256Mismatch)
    }
}

fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    auth: &ParsedAuth,
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let query = query_pairs(uri.query().unwrap_or_default());
    let query = query
        .iter()
        .filter(|(k, _)| auth.presigned_expires.is_none() || k != "X-Amz-Signature");
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        canonical_uri(uri.path()),
        canonical_query(query),
        canonical_headers(uri, headers, &auth.signed_headers)?,
        auth.signed_headers,
        payload_hash
    ))
}

/// The path normalised (RFC 3986 dot segments, empty segments) and encoded once more.
pub fn canonical_uri(path: &str) -> String {
    let absolute = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let normalized = if absolute.contains('.') || absolute.contains("//") {
        remove_dot_segments(&absolute)
    } else {
        absolute
    };
    percent_encode(&normalized, true)
}

fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut result = format!("/{}", kept.join("/"));
    let trailing = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if trailing && !result.ends_with('/') {
        result.push('/');
    }
    result
}

fn canonical_query<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .map(|(k, v)| (percent_encode(k, false), percent_encode(v, false)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_headers(
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in signed_headers.split(';') {
        let lower = name.to_ascii_lowercase();
        let values: Vec<String> = headers
            .get_all(lower.as_str())
            .iter()
            .map(|v| trim_all(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let joined = if !values.is_empty() {
            values.join(",")
        } else if lower == HOST.as_str() || lower == ":authority" {
            match uri.authority() {
                Some(authority) => authority.as_str().to_owned(),
                None => return Err(SigV4Error::SignedHeaderMissing { name: lower }),
            }
        } else {
            return Err(SigV4Error::SignedHeaderMissing { name: lower });
        };
        out.push_str(&lower);
        out.push(':');
        out.push_str(&joined);
        out.push('\n');
    }
    Ok(out)
}

/// Trims spaces and tabs at both ends and collapses runs of spaces inside.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut previous_space = false;
    for c in value.trim_matches([' ', '\t']).chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
    out
}

/// Decodes a raw query string into pairs (`+` is a space; bad UTF-8 is replaced).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'+' => Some((b' ', 1)),
            b'%' => bytes
                .get(i + 1..i + 3)
                .and_then(|h| Some((hex_value(h[0])? << 4 | hex_value(h[1])?, 3))),
            _ => None,
        };
        let (byte, used) = decoded.unwrap_or((bytes[i], 1));
        out.push(byte);
        i += used;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte but `A-Za-z0-9-._~` (and `/` when `keep_slash`), as `%XX`.
fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// 64 lowercase hex digits (as AWS writes them) to 32 bytes.
fn decode_signature(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || text.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(*pair.get(1)?)?))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_bytes(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        sign,
    };
    use aws_sigv4::sign::v4;
    use std::time::{Duration, UNIX_EPOCH};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const HOST_NAME: &str = "abc123.execute-api.us-east-1.amazonaws.com";

    fn at(s: &str) -> DateTime<Utc> {
        parse_basic(s).unwrap()
    }

    fn suite_verifier() -> SigV4Verifier {
        SigV4Verifier::new(AKID, SECRET, "us-east-1").with_service("service")
    }

    fn verifier() -> SigV4Verifier {
        SigV4Verifier::new(AKID, SECRET, "us-east-1")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// A request as a server sees it: origin-form URI, a Host header, the body.
    struct Seen {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Seen {
        fn verify_with(&self, v: &SigV4Verifier, now: DateTime<Utc>) -> Result<(), SigV4Error> {
            v.verify(&self.method, &self.uri, &self.headers, &self.body, now)
        }
    }

    struct Signing<'a> {
        akid: &'a str,
        secret: &'a str,
        token: Option<&'a str>,
        region: &'a str,
        service: &'a str,
        time: DateTime<Utc>,
        settings: SigningSettings,
        unsigned_body: bool,
    }

    impl Default for Signing<'_> {
        fn default() -> Self {
            Self {
                akid: AKID,
                secret: SECRET,
                token: None,
                region: "us-east-1",
                service: "execute-api",
                time: at("20150830T123600Z"),
                settings: SigningSettings::default(),
                unsigned_body: false,
            }
        }
    }

    /// Signs with the AWS SDK's own signer (`aws-sigv4`), as the management API client does.
    fn sdk_signed(
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        s: Signing<'_>,
    ) -> Seen {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("https://{HOST_NAME}{path}"));
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        let mut request = builder.body(body.to_vec()).unwrap();
        let identity =
            Credentials::new(s.akid, s.secret, s.token.map(str::to_owned), None, "test").into();
        let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(s.time.timestamp()).unwrap());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(s.region)
            .name(s.service)
            .time(time)
            .settings(s.settings)
            .build()
            .unwrap()
            .into();
        let header_pairs: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let signable_body = if s.unsigned_body {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(request.body())
        };
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            header_pairs.into_iter(),
            signable_body,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        headers.insert(HOST, HeaderValue::from_static(HOST_NAME));
        let uri: Uri = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
            .parse()
            .unwrap();
        Seen {
            method: parts.method,
            uri,
            headers,
            body,
        }
    }

    fn get_vanilla_headers() -> HeaderMap {
        headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ])
    }

    // --- The AWS SigV4 test suite (files under aws-sigv4's aws-signing-test-suite/v4) ---

    #[test]
    fn suite_get_vanilla_verifies() {
        let uri: Uri = "/".parse().unwrap();
        suite_verifier()
            .verify(
                &Method::GET,
                &uri,
                &get_vanilla_headers(),
                b"",
                at("20150830T123600Z"),
            )
            .unwrap();
    }

    #[test]
    fn suite_get_vanilla_fails_as_execute_api_and_with_another_method() {
        let uri: Uri = "/".parse().unwrap();
        let now = at("20150830T123600Z");
        let err = verifier()
            .verify(&Method::GET, &uri, &get_vanilla_headers(), b"", now)
            .unwrap_err();
        assert!(matches!(err, SigV4Error::WrongService { .. }), "{err:?}");
        let err = suite_verifier()
            .verify(&Method::POST, &uri, &get_vanilla_headers(), b"", now)
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::SignatureMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn suite_header_value_trim_and_query_order_verify() {
        let now = at("20150830T123600Z");
        let trim = headers(&[
            ("host", "example.amazonaws.com"),
            ("my-header1", " value1"),
            ("my-header2", "\"a   b   c\""),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            ),
        ]);
        suite_verifier()
            .verify(&Method::GET, &"/".parse().unwrap(), &trim, b"", now)
            .unwrap();
        let query = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ]);
        let uri: Uri = "/?Param2=value2&Param1=value1".parse().unwrap();
        suite_verifier()
            .verify(&Method::GET, &uri, &query, b"", now)
            .unwrap();
    }

    #[test]
    fn suite_presigned_get_vanilla_verifies_until_it_expires() {
        let uri: Uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d".parse().unwrap();
        let h = headers(&[("host", "example.amazonaws.com")]);
        let v = suite_verifier();
        v.verify(&Method::GET, &uri, &h, b"", at("20150830T123600Z"))
            .unwrap();
        v.verify(&Method::GET, &uri, &h, b"", at("20150830T133600Z"))
            .unwrap();
        let err = v
            .verify(&Method::GET, &uri, &h, b"", at("20150830T133601Z"))
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::PresignedUrlExpired { .. }),
            "{err:?}"
        );
        let err = v
            .verify(&Method::GET, &uri, &h, b"", at("20150830T120000Z"))
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::SignatureNotYetCurrent { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn suite_double_encode_path_canonical_uri() {
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(
            canonical_uri("/ws/@connections/L0SM9cOFvHcCIhw%3D"),
            "/ws/%40connections/L0SM9cOFvHcCIhw%253D"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/.."), "/");
    }

    // --- Requests signed by the AWS SDK's signer ---

    const CONNECTION_PATHS: [&str; 5] = [
        "/@connections/L0SM9cOFvHcCIhw%3D",
        "/ws/@connections/L0SM9cOFvHcCIhw%3D",
        "/ws/%40connections/L0SM9cOFvHcCIhw%3D",
        "/ws/@connections/a%2Bb%2Fc%3D%3D",
        "/@connections/R0oXAdfD0kwCH6w=",
    ];

    #[test]
    fn sdk_signed_management_calls_verify() {
        let now = at("20150830T123600Z");
        for path in CONNECTION_PATHS {
            for (method, body, extra) in [
                (
                    "POST",
                    &b"{\"hello\":\"world\"}"[..],
                    &[
                        ("content-type", "application/json"),
                        ("x-amz-user-agent", "aws-sdk-rust/1"),
                    ][..],
                ),
                ("GET", &b""[..], &[][..]),
                ("DELETE", &b""[..], &[][..]),
            ] {
                let seen = sdk_signed(method, path, extra, body, Signing::default());
                seen.verify_with(&verifier(), now)
                    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            }
        }
    }

    #[test]
    fn sdk_canonical_uri_is_double_encoded() {
        let seen = sdk_signed(
            "GET",
            "/ws/@connections/L0SM9cOFvHcCIhw%3D",
            &[],
            b"",
            Signing {
                secret: "other",
                ..Signing::default()
            },
        );
        let Err(SigV4Error::SignatureMismatch {
            canonical_request, ..
        }) = seen.verify_with(&verifier(), at("20150830T123600Z"))
        else {
            panic!("expected a mismatch");
        };
        assert_eq!(
            canonical_request.lines().nth(1),
            Some("/ws/%40connections/L0SM9cOFvHcCIhw%253D")
        );
    }

    #[test]
    fn sdk_signed_variants_verify() {
        let now = at("20150830T123600Z");
        let path = CONNECTION_PATHS[1];
        let mut with_hash = SigningSettings::default();
        with_hash.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        sdk_signed(
            "POST",
            path,
            &[],
            b"hi",
            Signing {
                settings: with_hash.clone(),
                ..Signing::default()
            },
        )
        .verify_with(&verifier(), now)
        .unwrap();
        sdk_signed(
            "POST",
            path,
            &[],
            b"hi",
            Signing {
                settings: with_hash.clone(),
                unsigned_body: true,
                ..Signing::default()
            },
        )
        .verify_with(&verifier(), now)
        .unwrap();
        sdk_signed(
            "POST",
            path,
            &[],
            b"hi",
            Signing {
                token: Some("session-token"),
                ..Signing::default()
            },
        )
        .verify_with(&verifier(), now)
        .unwrap();
        sdk_signed(
            "GET",
            "/ws/@connections/abc?b=2&a=1&c=x+y%2Fz",
            &[],
            b"",
            Signing::default(),
        )
        .verify_with(&verifier(), now)
        .unwrap();
        let mut presign = SigningSettings::default();
        presign.signature_location = SignatureLocation::QueryParams;
        presign.expires_in = Some(Duration::from_secs(300));
        let seen = sdk_signed(
            "GET",
            path,
            &[],
            b"",
            Signing {
                settings: presign,
                ..Signing::default()
            },
        );
        seen.verify_with(&verifier(), now).unwrap();
        let err = seen
            .verify_with(&verifier(), at("20150830T124101Z"))
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::PresignedUrlExpired { .. }),
            "{err:?}"
        );
        // UNSIGNED-PAYLOAD only counts when the header says so.
        let err = sdk_signed(
            "POST",
            path,
            &[],
            b"hi",
            Signing {
                unsigned_body: true,
                ..Signing::default()
            },
        )
        .verify_with(&verifier(), now)
        .unwrap_err();
        assert!(
            matches!(err, SigV4Error::SignatureMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn failures_map_to_the_right_variant() {
        let now = at("20150830T123600Z");
        let path = CONNECTION_PATHS[1];
        let good = || {
            sdk_signed(
                "POST",
                path,
                &[("content-type", "application/json")],
                b"{\"a\":1}",
                Signing::default(),
            )
        };

        let err = |seen: Seen| seen.verify_with(&verifier(), now).unwrap_err();
        assert!(
            matches!(err(sdk_signed("POST", path, &[], b"x", Signing { akid: "AKIDOTHER", ..Signing::default() })), SigV4Error::UnknownAccessKey { access_key_id } if access_key_id == "AKIDOTHER")
        );
        assert!(matches!(
            err(sdk_signed(
                "POST",
                path,
                &[],
                b"x",
                Signing {
                    secret: "not-the-secret",
                    ..Signing::default()
                }
            )),
            SigV4Error::SignatureMismatch { .. }
        ));
        assert!(
            matches!(err(sdk_signed("POST", path, &[], b"x", Signing { region: "eu-west-1", ..Signing::default() })), SigV4Error::WrongRegion { got, .. } if got == "eu-west-1")
        );
        assert!(
            matches!(err(sdk_signed("POST", path, &[], b"x", Signing { service: "apigateway", ..Signing::default() })), SigV4Error::WrongService { got, .. } if got == "apigateway")
        );

        for minutes in [-16, 16] {
            let seen = sdk_signed(
                "GET",
                path,
                &[],
                b"",
                Signing {
                    time: now + TimeDelta::minutes(minutes),
                    ..Signing::default()
                },
            );
            let e = seen.verify_with(&verifier(), now).unwrap_err();
            if minutes < 0 {
                assert!(matches!(e, SigV4Error::SignatureExpired { .. }), "{e:?}");
            } else {
                assert!(
                    matches!(e, SigV4Error::SignatureNotYetCurrent { .. }),
                    "{e:?}"
                );
            }
        }
        for minutes in [-14, 14, -15, 15] {
            sdk_signed(
                "GET",
                path,
                &[],
                b"",
                Signing {
                    time: now + TimeDelta::minutes(minutes),
                    ..Signing::default()
                },
            )
            .verify_with(&verifier(), now)
            .unwrap();
        }

        let mut tampered = good();
        tampered.body = b"{\"a\":2}".to_vec();
        assert!(matches!(
            err(tampered),
            SigV4Error::SignatureMismatch { .. }
        ));

        let mut with_hash = SigningSettings::default();
        with_hash.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let mut tampered = sdk_signed(
            "POST",
            path,
            &[],
            b"one",
            Signing {
                settings: with_hash,
                ..Signing::default()
            },
        );
        tampered.body = b"two".to_vec();
        assert_eq!(err(tampered), SigV4Error::ContentSha256Mismatch);

        let mut tampered = good();
        tampered.uri = "/ws/@connections/OTHERcOFvHcCIhw%3D".parse().unwrap();
        assert!(matches!(
            err(tampered),
            SigV4Error::SignatureMismatch { .. }
        ));

        let mut missing = good();
        missing.headers.remove(CONTENT_TYPE);
        assert_eq!(
            err(missing),
            SigV4Error::SignedHeaderMissing {
                name: "content-type".into()
            }
        );

        let mut unsigned = good();
        unsigned.headers.remove(AUTHORIZATION);
        assert_eq!(err(unsigned), SigV4Error::MissingAuthenticationToken);

        let mut blank = good();
        blank
            .headers
            .insert(AUTHORIZATION, HeaderValue::from_static("   "));
        assert_eq!(err(blank), SigV4Error::MissingAuthenticationToken);

        let mut twice = good();
        twice.headers.append(
            AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 x=y"),
        );
        assert!(matches!(
            err(twice),
            SigV4Error::AmbiguousAuthentication { .. }
        ));

        let mut extra_header = good();
        extra_header
            .headers
            .insert("x-unsigned", HeaderValue::from_static("ignored"));
        extra_header.verify_with(&verifier(), now).unwrap();
    }

    fn with_auth(auth: &str, date: Option<&str>) -> Result<(), SigV4Error> {
        let mut h = headers(&[("host", HOST_NAME), ("authorization", auth)]);
        if let Some(date) = date {
            h.insert(X_AMZ_DATE, HeaderValue::from_str(date).unwrap());
        }
        verifier().verify(
            &Method::GET,
            &"/@connections/x".parse().unwrap(),
            &h,
            b"",
            at("20150830T123600Z"),
        )
    }

    #[test]
    fn malformed_authorization_headers() {
        let date = Some("20150830T123600Z");
        assert_eq!(
            with_auth("Bearer sometoken", date).unwrap_err().to_string(),
            "'sometoken' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer sometoken'."
        );
        assert_eq!(
            with_auth("AWS4-HMAC-SHA256", None).unwrap_err().to_string(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
        );
        let sig = "Signature=".to_owned() + &"0".repeat(64);
        let scope = "Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request";
        let e = with_auth(
            &format!("AWS4-HMAC-SHA1 {scope}, SignedHeaders=host, {sig}"),
            date,
        )
        .unwrap_err();
        assert!(
            matches!(e, SigV4Error::UnsupportedAlgorithm { .. }),
            "{e:?}"
        );
        let e = with_auth(&format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1, SignedHeaders=host, {sig}"), date).unwrap_err();
        assert!(matches!(e, SigV4Error::MalformedCredential { .. }), "{e:?}");
        let e = with_auth(
            &format!("AWS4-HMAC-SHA256 {scope}, SignedHeaders=x-amz-date, {sig}"),
            date,
        )
        .unwrap_err();
        assert_eq!(e, SigV4Error::HostNotSigned);
        let e = with_auth(
            &format!("AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, {sig}"),
            Some("2015-08-30T12:36:00Z"),
        )
        .unwrap_err();
        assert!(matches!(e, SigV4Error::InvalidDate { .. }), "{e:?}");
        let e = with_auth(&format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/execute-api/aws4_request, SignedHeaders=host, {sig}"), date).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != '20150830', from '20150830T123600Z'."
        );
        let e = with_auth(&format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws5_request, SignedHeaders=host, {sig}"), date).unwrap_err();
        assert!(matches!(e, SigV4Error::WrongTerminator { .. }), "{e:?}");
        let e = with_auth(
            &format!("AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=XYZ"),
            date,
        )
        .unwrap_err();
        assert!(matches!(e, SigV4Error::SignatureMismatch { .. }), "{e:?}");
    }

    #[test]
    fn date_header_is_accepted_without_x_amz_date() {
        // Sign with X-Amz-Date, then move the date to an RFC 1123 Date header.
        let seen = sdk_signed("GET", "/@connections/x", &[], b"", Signing::default());
        let mut h = seen.headers.clone();
        h.remove(X_AMZ_DATE);
        h.insert(
            DATE,
            HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"),
        );
        let e = verifier()
            .verify(
                &seen.method,
                &seen.uri,
                &h,
                &seen.body,
                at("20150830T123600Z"),
            )
            .unwrap_err();
        // x-amz-date was signed and is now gone: the signed header is reported, not the date.
        assert_eq!(
            e,
            SigV4Error::SignedHeaderMissing {
                name: "x-amz-date".into()
            }
        );
        let mut h = headers(&[
            ("host", HOST_NAME),
            ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
        ]);
        h.insert(AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, SignedHeaders=date;host, Signature=0000000000000000000000000000000000000000000000000000000000000000"));
        let e = verifier()
            .verify(
                &Method::GET,
                &"/".parse().unwrap(),
                &h,
                b"",
                at("20150830T123600Z"),
            )
            .unwrap_err();
        let SigV4Error::SignatureMismatch { string_to_sign, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(string_to_sign.lines().nth(1), Some("20150830T123600Z"));
    }

    #[test]
    fn answers_match_api_gateway() {
        let (status, kind, message) = SigV4Error::MissingAuthenticationToken.response_parts();
        assert_eq!(
            (status, kind, message.as_str()),
            (
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token"
            )
        );
        assert_eq!(
            SigV4Error::MissingAuthenticationToken.json_body(),
            r#"{"message":"Missing Authentication Token"}"#
        );
        let response = SigV4Error::MissingAuthenticationToken.to_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");

        let now = at("20150830T125100Z");
        let seen = sdk_signed(
            "GET",
            "/@connections/x",
            &[],
            b"",
            Signing {
                time: at("20150830T123500Z"),
                ..Signing::default()
            },
        );
        let e = seen.verify_with(&verifier(), now).unwrap_err();
        assert_eq!(e.response_parts(), (StatusCode::FORBIDDEN, "InvalidSignatureException", "Signature expired: 20150830T123500Z is now earlier than 20150830T123600Z (20150830T125100Z - 15 min.)".to_owned()));
        let five = verifier().with_max_skew(TimeDelta::minutes(5));
        assert!(
            seen.verify_with(&five, now)
                .unwrap_err()
                .to_string()
                .ends_with("(20150830T125100Z - 5 min.)")
        );

        let seen = sdk_signed(
            "GET",
            "/@connections/x",
            &[],
            b"",
            Signing {
                secret: "bad",
                ..Signing::default()
            },
        );
        let (_, kind, message) = seen
            .verify_with(&verifier(), at("20150830T123600Z"))
            .unwrap_err()
            .response_parts();
        assert_eq!(kind, "InvalidSignatureException");
        assert!(message.starts_with(MISMATCH), "{message}");
        assert!(message.contains("The Canonical String for this request should have been"));

        let cases: [(SigV4Error, &str); 5] = [
            (
                SigV4Error::UnknownAccessKey {
                    access_key_id: "A".into(),
                },
                UNKNOWN_ACCESS_KEY_ERROR_TYPE,
            ),
            (SigV4Error::HostNotSigned, "IncompleteSignatureException"),
            (
                SigV4Error::WrongRegion {
                    expected: "us-east-1".into(),
                    got: "eu-west-1".into(),
                },
                "InvalidSignatureException",
            ),
            (
                SigV4Error::WrongService {
                    expected: EXECUTE_API.into(),
                    got: "s3".into(),
                },
                "InvalidSignatureException",
            ),
            (
                SigV4Error::ContentSha256Mismatch,
                "InvalidSignatureException",
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
            assert_eq!(e.error_type(), kind);
        }
        assert_eq!(
            SigV4Error::UnknownAccessKey {
                access_key_id: "A".into()
            }
            .to_string(),
            "The security token included in the request is invalid."
        );
        assert_eq!(
            SigV4Error::WrongService {
                expected: EXECUTE_API.into(),
                got: "s3".into()
            }
            .to_string(),
            "Credential should be scoped to correct service: 'execute-api'. "
        );
        assert_eq!(
            SigV4Error::WrongRegion {
                expected: "us-east-1".into(),
                got: "eu-west-1".into()
            }
            .to_string(),
            "Credential should be scoped to a valid region, not 'eu-west-1'. "
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        assert!(!format!("{:?}", verifier()).contains(SECRET));
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
        }
    }

    fn mangle(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        const INTERESTING: &[u8] = b"=,/; \t%AWS4-HMAC-SHA256Credential0aZ\x7f\x80\xff";
        let mut out = input.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(6) {
                0 if !out.is_empty() => {
                    out.remove(at.min(out.len() - 1));
                }
                1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
                2 => out.truncate(at),
                3 if !out.is_empty() => {
                    let i = at.min(out.len() - 1);
                    out[i] = u8::try_from(rng.below(256)).unwrap();
                }
                4 => {
                    let chunk = out
                        .get(rng.below(out.len() + 1)..)
                        .unwrap_or_default()
                        .to_vec();
                    out.splice(at..at, chunk.into_iter().take(8));
                }
                _ => out.insert(at, b','),
            }
        }
        out
    }

    #[test]
    fn mangled_authorization_values_never_panic_and_never_verify() {
        let now = at("20150830T123600Z");
        let seen = sdk_signed(
            "POST",
            "/ws/@connections/L0SM9cOFvHcCIhw%3D",
            &[],
            b"body",
            Signing::default(),
        );
        let original = seen.headers[AUTHORIZATION].as_bytes().to_vec();
        let original_date = seen.headers[X_AMZ_DATE].as_bytes().to_vec();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut tried = 0;
        for round in 0..4000 {
            let mut h = seen.headers.clone();
            let (name, source) = if round % 4 == 3 {
                (X_AMZ_DATE, &original_date)
            } else {
                (AUTHORIZATION.as_str(), &original)
            };
            let mangled = mangle(&mut rng, source);
            if mangled == *source {
                continue;
            }
            let Ok(value) = HeaderValue::from_bytes(&mangled) else {
                continue;
            };
            h.insert(name, value);
            tried += 1;
            let result = verifier().verify(&seen.method, &seen.uri, &h, &seen.body, now);
            // A change that only adds or removes spaces or empty pairs (",,") may still
            // verify; anything else must not.
            let squeeze = |b: &[u8]| {
                b.iter()
                    .copied()
                    .filter(|c| !c.is_ascii_whitespace() && *c != b',')
                    .collect::<Vec<_>>()
            };
            if squeeze(&mangled) != squeeze(source) {
                assert!(
                    result.is_err(),
                    "mangled value verified: {:?}",
                    String::from_utf8_lossy(&mangled)
                );
            }
        }
        assert!(
            tried > 2000,
            "only {tried} mangled values were valid header values"
        );
        // And raw garbage, including through the presigned-query path.
        for _ in 0..1000 {
            let len = rng.below(80);
            let garbage: Vec<u8> = (0..len)
                .map(|_| u8::try_from(rng.below(256)).unwrap())
                .collect();
            let mut h = seen.headers.clone();
            if let Ok(value) = HeaderValue::from_bytes(&garbage) {
                h.insert(AUTHORIZATION, value);
                assert!(
                    verifier()
                        .verify(&seen.method, &seen.uri, &h, &seen.body, now)
                        .is_err()
                );
            }
            let query: String = garbage.iter().map(|b| format!("%{b:02X}")).collect();
            if let Ok(uri) =
                format!("/x?X-Amz-Algorithm={query}&X-Amz-Expires=9&{query}={query}").parse::<Uri>()
            {
                assert!(
                    verifier()
                        .verify(&Method::GET, &uri, &HeaderMap::new(), b"", now)
                        .is_err()
                );
            }
        }
    }
}
