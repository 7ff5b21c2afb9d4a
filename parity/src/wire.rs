//! A small HTTP/1.1 client (one request per connection, `Connection: close`) over plain
//! TCP or rustls: enough for the token issuer, the app's HTTP API and Cognito, without
//! another HTTP stack in the graph.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

/// The largest response body read (the app's answers are small).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A parsed `http(s)://` or `ws(s)://` URL.
#[derive(Clone, Debug)]
pub(crate) struct Url {
    /// Whether TLS is used (`https`, `wss`).
    pub(crate) tls: bool,
    /// The host, without brackets.
    pub(crate) host: String,
    /// The port (the scheme's default when absent).
    pub(crate) port: u16,
    /// Path and query (`/` when empty).
    pub(crate) path: String,
}

impl Url {
    /// Parses `url`; the error says why it is unusable.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
        let tls = match uri.scheme_str() {
            Some("https" | "wss") => true,
            Some("http" | "ws") => false,
            other => return Err(format!("unsupported scheme {other:?}")),
        };
        let host = uri
            .host()
            .ok_or_else(|| "no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Self {
            tls,
            host,
            port,
            path,
        })
    }

    /// Whether the host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `host:port` for the `Host` header (the port only when not the default).
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// An HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as (lossy) text, for failure details.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to `url`, within `limit`.
pub(crate) async fn request(
    tls: Option<&Arc<ClientConfig>>,
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: Duration,
) -> Result<HttpResponse, String> {
    let parsed = Url::parse(url)?;
    match timeout(limit, exchange_url(tls, &parsed, method, headers, body)).await {
        Ok(result) => result.map_err(|e| format!("{method} {url}: {e}")),
        Err(_) => Err(format!("{method} {url}: no answer within {limit:?}")),
    }
}

async fn exchange_url(
    tls: Option<&Arc<ClientConfig>>,
    url: &Url,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: {ua}\r\n{extra}Content-Length: {len}\r\n\r\n",
        path = url.path,
        host = url.authority(),
        ua = crate::target::USER_AGENT,
        len = body.len()
    );
    if !url.tls {
        return exchange(tcp, &head, body).await;
    }
    let config = tls.ok_or_else(|| "TLS is not set up".to_owned())?;
    let name = ServerName::try_from(url.host.clone()).map_err(|e| format!("server name: {e}"))?;
    let stream = TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    exchange(stream, &head, body).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> Result<HttpResponse, String> {
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream
        .write_all(body)
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut limited = (&mut stream).take(MAX_RESPONSE_BYTES as u64);
    // A TLS peer that closes without close_notify still gave us the whole response.
    if let Err(e) = limited.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(format!("read: {e}"));
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "no end of headers in the response".to_owned())?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return out;
        };
        let start = eol + 2;
        if size == 0 || start + size > data.len() {
            return out;
        }
        out.extend_from_slice(&data[start..start + size]);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
}

/// Percent-encodes `s` for a query value or a path segment (RFC 3986 unreserved kept).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_loopback() {
        let u = Url::parse("ws://127.0.0.1:3000/ws").unwrap_or_else(|e| panic!("{e}"));
        assert!(!u.tls && u.is_loopback() && u.port == 3000 && u.path == "/ws");
        let u = Url::parse("wss://d1.cloudfront.net/ws").unwrap_or_else(|e| panic!("{e}"));
        assert!(u.tls && !u.is_loopback() && u.port == 443);
        assert!(Url::parse("http://[::1]:80").is_ok_and(|u| u.is_loopback()));
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://10.0.0.1").is_ok_and(|u| !u.is_loopback()));
    }

    #[test]
    fn chunked_bodies_and_bad_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.status, r.body.as_slice()), (200, b"abcde".as_slice()));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 x\r\n\r\n").is_err());
        assert_eq!(encode("a b=/"), "a%20b%3D%2F");
    }
}
