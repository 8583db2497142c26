//! The RFC 9110 §11.6.1 challenge parser.

use super::{Challenge, is_tchar, is_token68_char};

/// A `WWW-Authenticate` value that does not follow RFC 9110 §11.6.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate header at byte {position}: {reason}")]
pub struct ParseError {
    position: usize,
    reason: &'static str,
}

impl ParseError {
    /// The byte offset where parsing failed.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.pos + offset).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_ows_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            position: self.pos,
            reason,
        }
    }

    /// Length of the run of bytes matching `f` starting at `pos + offset`.
    fn run_len(&self, offset: usize, f: fn(u8) -> bool) -> usize {
        self.input
            .get(self.pos + offset..)
            .map_or(0, |s| s.iter().take_while(|b| f(**b)).count())
    }

    fn take(&mut self, len: usize) -> String {
        let s = String::from_utf8_lossy(&self.input[self.pos..self.pos + len]).into_owned();
        self.pos += len;
        s
    }

    fn quoted_string(&mut self) -> Result<String, ParseError> {
        // Called with peek() == '"'.
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let Some(c) = self.peek_at(1) else {
                        return Err(self.error("unterminated quoted pair"));
                    };
                    if !(c == b'\t' || c >= 0x20) || c == 0x7f {
                        return Err(self.error("invalid quoted pair"));
                    }
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => {
                    out.push(c);
                    self.pos += 1;
                }
                Some(_) => return Err(self.error("control character in quoted string")),
            }
        }
    }

    /// Whether an auth-param (`token BWS "="`, not followed by another `=`) starts here.
    fn at_auth_param(&self) -> bool {
        let name = self.run_len(0, is_tchar);
        if name == 0 {
            return false;
        }
        let mut i = name;
        while matches!(self.peek_at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if self.peek_at(i) != Some(b'=') {
            return false;
        }
        i += 1;
        while matches!(self.peek_at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        // `abc=` or `abc==` ending a list item is a token68, not a parameter ('=' is no tchar).
        matches!(self.peek_at(i), Some(c) if c == b'"' || is_tchar(c))
    }

    fn auth_param(&mut self) -> Result<(String, String), ParseError> {
        let name_len = self.run_len(0, is_tchar);
        let name = self.take(name_len);
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(self.error("expected '='"));
        }
        self.pos += 1;
        self.skip_ows();
        let value = match self.peek() {
            Some(b'"') => self.quoted_string()?,
            Some(c) if is_tchar(c) => {
                let len = self.run_len(0, is_tchar);
                self.take(len)
            }
            _ => return Err(self.error("expected a token or a quoted string")),
        };
        Ok((name, value))
    }

    /// Whether a token68 starts here and ends the list item.
    fn token68_len(&self) -> Option<usize> {
        let body = self.run_len(0, is_token68_char);
        if body == 0 {
            return None;
        }
        let pad = self.run_len(body, |b| b == b'=');
        let mut i = body + pad;
        while matches!(self.peek_at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        matches!(self.peek_at(i), None | Some(b',')).then_some(body + pad)
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges.
///
/// Empty list elements are tolerated (`, ,Bearer`), as RFC 9110 §5.6.1 asks of recipients.
///
/// # Errors
/// [`ParseError`] when the value is not a list of RFC 9110 challenges (an empty value included).
pub fn parse(header: &str) -> Result<Vec<Challenge>, ParseError> {
    let mut c = Cursor {
        input: header.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        c.skip_ows_and_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme_len = c.run_len(0, is_tchar);
        if scheme_len == 0 {
            return Err(c.error("expected an auth-scheme"));
        }
        let mut challenge = Challenge::new(c.take(scheme_len));
        match c.peek() {
            None | Some(b',') => {
                challenges.push(challenge);
                continue;
            }
            Some(b' ' | b'\t') => c.skip_ows(),
            Some(_) => return Err(c.error("expected a space after the auth-scheme")),
        }
        if c.peek().is_none() || c.peek() == Some(b',') {
            challenges.push(challenge);
            continue;
        }
        if !c.at_auth_param() {
            let Some(len) = c.token68_len() else {
                return Err(c.error("expected a token68 or an auth-param"));
            };
            challenge.token68 = Some(c.take(len));
            challenges.push(challenge);
            continue;
        }
        // One or more auth-params, separated by commas; a list item that is not an auth-param
        // starts the next challenge.
        loop {
            let param = c.auth_param()?;
            challenge.params.push(param);
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    let save = c.pos;
                    c.skip_ows_and_commas();
                    if c.peek().is_none() {
                        break;
                    }
                    if !c.at_auth_param() {
                        c.pos = save;
                        break;
                    }
                }
                Some(_) => return Err(c.error("expected ',' between parameters")),
            }
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err(c.error("no challenge"));
    }
    Ok(challenges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut all = parse(header).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn bearer_with_parameters() {
        let c = one(r#"Bearer resource_metadata="https://a.example/x", scope="a b""#);
        assert!(c.is_scheme("bearer"));
        assert_eq!(c.param("RESOURCE_METADATA"), Some("https://a.example/x"));
        assert_eq!(c.param("scope"), Some("a b"));
    }

    #[test]
    fn quoted_pairs_are_unescaped() {
        let c = one(r#"Bearer error_description="say \"hi\" \\ bye""#);
        assert_eq!(c.param("error_description"), Some(r#"say "hi" \ bye"#));
    }

    #[test]
    fn token_values_and_bad_whitespace_around_equals() {
        let c = one("Bearer error = invalid_token ,realm=x");
        assert_eq!(c.param("error"), Some("invalid_token"));
        assert_eq!(c.param("realm"), Some("x"));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let all = parse(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].scheme(), "Newauth");
        assert_eq!(all[0].param("title"), Some(r#"Login to "apps""#));
        assert_eq!(all[0].params().len(), 3);
        assert!(all[1].is_scheme("basic"));
    }

    #[test]
    fn token68_and_bare_schemes() {
        let all = parse("Negotiate abc+/==, Bearer, Basic").unwrap();
        assert_eq!(all[0].token68(), Some("abc+/=="));
        assert!(all[1].is_scheme("Bearer") && all[1].params().is_empty());
        assert!(all[2].is_scheme("Basic"));
        let c = one("Basic abc=");
        assert_eq!(c.token68(), Some("abc="));
    }

    #[test]
    fn empty_list_elements_are_tolerated() {
        let all = parse(r#" , Bearer realm="a",, scope="s" ,"#).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].param("scope"), Some("s"));
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "",
            "   ",
            "\"x\"",
            r#"Bearer realm="open"#,
            "Bearer a=b c=d",
            "Bearer=x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
