//! The little HTTP/1.1 client the authorization-server conformance run needs (xtask stays
//! dependency-free): one request per connection, plain `http://` to loopback addresses only,
//! bounded in time and size, redirects not followed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    time::Duration,
};

/// Connect, read and write timeout of each request.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response read (metadata and registration answers are a few KiB).
const MAX_RESPONSE: u64 = 1 << 20;

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    /// The first header named `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `http://host:port/path?query` → (`host:port`, a loopback socket address, `/path?query`).
fn split_url(url: &str) -> Result<(String, SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not a plain http URL: {url}"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(format!("unsupported authority in {url}"));
    }
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_owned()
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("{authority} is not a loopback address; refusing"))?;
    Ok((authority.to_owned(), addr, path))
}

/// Sends one request and reads the whole response.
pub(crate) fn request(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &str,
) -> Result<Response, String> {
    let (host, addr, path) = split_url(url)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{url}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{url}: {e}"))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json, text/html\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("{url}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{url}: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("{url}: not an HTTP/1.1 response"))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_response, split_url};

    #[test]
    fn splits_loopback_urls_and_refuses_others() {
        let (host, addr, path) = split_url("http://127.0.0.1:8080/authorize?a=1").unwrap();
        assert_eq!(host, "127.0.0.1:8080");
        assert_eq!(addr.port(), 8080);
        assert_eq!(path, "/authorize?a=1");
        let (_, _, path) = split_url("http://127.0.0.1:9?x").unwrap();
        assert_eq!(path, "/?x");
        assert!(split_url("https://127.0.0.1/").is_err());
        assert!(split_url("http://192.0.2.1:80/").is_err());
        assert!(split_url("http://user@127.0.0.1/").is_err());
    }

    #[test]
    fn reads_plain_and_chunked_responses() {
        let plain = parse_response(
            b"HTTP/1.1 303 See Other\r\nLocation: http://x/cb?code=1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(plain.status, 303);
        assert_eq!(plain.header("location"), Some("http://x/cb?code=1"));
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "{\"a\":1}");
        assert!(parse_response(b"garbage").is_none());
    }
}
