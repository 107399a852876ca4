//! Tokenizer for the part of SQLite's SQL dialect that appears in a
//! `CREATE TABLE` statement.
//!
//! It follows `getToken()` in SQLite's `tokenize.c`: the same whitespace set,
//! comment forms, quoting styles, number syntax (including `0x` hex and `_`
//! digit separators) and operators. Every token, including whitespace and
//! comments ("trivia"), keeps its byte span in the source so the editor can
//! reproduce untouched text byte for byte. Bound parameters (`?`, `:x`, `@x`,
//! `$x`) are not accepted: SQLite does not allow them in a schema statement.

use super::CreateTableError;

/// A half-open byte range `start..end` in the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The text this span covers in `src` (empty if the span is out of range).
    pub(crate) fn of<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Spaces, tabs, newlines, form feeds, carriage returns.
    Whitespace,
    /// `-- ...` up to (not including) the newline, or `/* ... */`.
    Comment,
    /// A bare word: an identifier or a keyword (SQLite decides by context).
    Word,
    /// `"x"`, `` `x` `` or `[x]`.
    QuotedIdent,
    /// `'text'` with `''` escapes.
    String,
    /// `X'0A1B'`.
    Blob,
    /// Integer, real or hex number, without sign.
    Number,
    /// Punctuation and operators: `( ) , ; . + - * / % || == <> ...`.
    Punct,
}

/// One token and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl Token {
    /// True for whitespace and comments.
    pub(crate) fn is_trivia(&self) -> bool {
        matches!(self.kind, TokenKind::Whitespace | TokenKind::Comment)
    }

    /// True for tokens that can name something: bare words, quoted
    /// identifiers and (as SQLite allows in names) string literals.
    pub(crate) fn is_name(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Word | TokenKind::QuotedIdent | TokenKind::String
        )
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn is_id_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Splits `src` into tokens, trivia included. The spans cover the whole input
/// without gaps, so concatenating the token texts gives `src` back.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, CreateTableError> {
    let b = src.as_bytes();
    let len = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < len {
        let start = i;
        let c = b[i];
        let kind = match c {
            c if is_space(c) => {
                while i < len && is_space(b[i]) {
                    i += 1;
                }
                TokenKind::Whitespace
            }
            b'-' if at(b, i + 1) == b'-' => {
                while i < len && b[i] != b'\n' {
                    i += 1;
                }
                TokenKind::Comment
            }
            b'/' if at(b, i + 1) == b'*' => {
                // Like SQLite, an unterminated block comment runs to the end.
                i += 2;
                loop {
                    if i >= len {
                        i = len;
                        break;
                    }
                    if b[i] == b'*' && at(b, i + 1) == b'/' {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
                TokenKind::Comment
            }
            b'\'' => {
                i = scan_quoted(src, i, b'\'')?;
                TokenKind::String
            }
            b'"' | b'`' => {
                i = scan_quoted(src, i, c)?;
                TokenKind::QuotedIdent
            }
            b'[' => match b[i + 1..].iter().position(|&x| x == b']') {
                Some(p) => {
                    i += p + 2;
                    TokenKind::QuotedIdent
                }
                None => return Err(syntax(src, len, "closing ']' of a [bracketed] identifier")),
            },
            b'x' | b'X' if at(b, i + 1) == b'\'' => {
                i += 2;
                let digits = i;
                while i < len && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if at(b, i) != b'\'' || (i - digits) % 2 != 0 {
                    return Err(syntax(
                        src,
                        start,
                        "a blob literal X'..' with an even number of hex digits",
                    ));
                }
                i += 1;
                TokenKind::Blob
            }
            b'0'..=b'9' => {
                i = scan_number(src, i)?;
                TokenKind::Number
            }
            b'.' if at(b, i + 1).is_ascii_digit() => {
                i = scan_number(src, i)?;
                TokenKind::Number
            }
            c if is_id_start(c) => {
                while i < len && is_id_char(b[i]) {
                    i += 1;
                }
                TokenKind::Word
            }
            _ => {
                i += punct_len(b, i).ok_or_else(|| syntax(src, start, "a SQL token"))?;
                TokenKind::Punct
            }
        };
        out.push(Token {
            kind,
            span: Span::new(start, i),
        });
    }
    Ok(out)
}

/// Scans a quoted token starting at `i` (the opening quote) where the quote
/// character is escaped by doubling it. Returns the index after the closing quote.
fn scan_quoted(src: &str, mut i: usize, quote: u8) -> Result<usize, CreateTableError> {
    let b = src.as_bytes();
    i += 1;
    loop {
        match b.get(i) {
            None => {
                let what = match quote {
                    b'\'' => "closing ' of a string literal",
                    b'"' => "closing \" of a quoted identifier",
                    _ => "closing ` of a quoted identifier",
                };
                return Err(syntax(src, b.len(), what));
            }
            Some(&c) if c == quote => {
                if at(b, i + 1) == quote {
                    i += 2;
                } else {
                    return Ok(i + 1);
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// Scans a number the way SQLite does; a number immediately followed by
/// identifier characters (`12abc`) is an error, as in SQLite.
fn scan_number(src: &str, mut i: usize) -> Result<usize, CreateTableError> {
    let b = src.as_bytes();
    let start = i;
    if b[i] == b'0' && matches!(at(b, i + 1), b'x' | b'X') && at(b, i + 2).is_ascii_hexdigit() {
        i += 3;
        while at(b, i).is_ascii_hexdigit() || at(b, i) == b'_' {
            i += 1;
        }
    } else {
        while at(b, i).is_ascii_digit() || at(b, i) == b'_' {
            i += 1;
        }
        if at(b, i) == b'.' {
            i += 1;
            while at(b, i).is_ascii_digit() || at(b, i) == b'_' {
                i += 1;
            }
        }
        if matches!(at(b, i), b'e' | b'E')
            && (at(b, i + 1).is_ascii_digit()
                || (matches!(at(b, i + 1), b'+' | b'-') && at(b, i + 2).is_ascii_digit()))
        {
            i += 2;
            while at(b, i).is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && is_id_char(b[i]) {
        return Err(syntax(src, start, "a number not followed by letters"));
    }
    Ok(i)
}

/// Length of the operator or punctuation token at `i`, if it is one.
fn punct_len(b: &[u8], i: usize) -> Option<usize> {
    let n1 = at(b, i + 1);
    Some(match b[i] {
        b'(' | b')' | b',' | b';' | b'+' | b'*' | b'/' | b'%' | b'&' | b'~' | b'.' => 1,
        b'-' if n1 == b'>' && at(b, i + 2) == b'>' => 3,
        b'-' if n1 == b'>' => 2,
        b'-' => 1,
        b'=' if n1 == b'=' => 2,
        b'=' => 1,
        b'<' if matches!(n1, b'=' | b'>' | b'<') => 2,
        b'<' => 1,
        b'>' if matches!(n1, b'=' | b'>') => 2,
        b'>' => 1,
        b'!' if n1 == b'=' => 2,
        b'|' if n1 == b'|' => 2,
        b'|' => 1,
        _ => return None,
    })
}

/// A syntax error at byte `position` of `src`.
pub(crate) fn syntax(src: &str, position: usize, expected: &str) -> CreateTableError {
    let rest = src.get(position..).unwrap_or("");
    let found = if rest.is_empty() {
        "end of input".to_string()
    } else {
        let snippet: String = rest.chars().take(24).collect();
        if snippet.len() < rest.len() {
            format!("{snippet:?}...")
        } else {
            format!("{snippet:?}")
        }
    };
    CreateTableError::Syntax {
        position,
        expected: expected.to_string(),
        found,
    }
}

/// The value a name token stands for: quotes removed and doubled quotes
/// undone (`"a""b"` is `a"b`, `[x]` is `x`, `'s'` is `s`); bare words as is.
pub(crate) fn unquote(text: &str) -> String {
    let b = text.as_bytes();
    if b.len() >= 2 {
        let (first, last) = (b[0], b[b.len() - 1]);
        // Both ends are ASCII quote bytes in every arm, so slicing is safe.
        let inner = || &text[1..text.len() - 1];
        match (first, last) {
            (b'"', b'"') => return inner().replace("\"\"", "\""),
            (b'`', b'`') => return inner().replace("``", "`"),
            (b'\'', b'\'') => return inner().replace("''", "'"),
            (b'[', b']') => return inner().to_string(),
            _ => {}
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, &str)> {
        tokenize(src)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.span.of(src)))
            .collect()
    }

    #[test]
    fn tokens_cover_the_input() {
        let src = "CREATE TABLE \"a\"\"b\"([x y], `q``r` TEXT DEFAULT 'it''s,(') -- c\n/* d */";
        let toks = tokenize(src).unwrap();
        let joined: String = toks.iter().map(|t| t.span.of(src)).collect();
        assert_eq!(joined, src);
    }

    #[test]
    fn literals_and_operators() {
        use TokenKind::*;
        let k = kinds("x'0aFF' 1e5 .5 0x1F 1_000 3.14E-2 -1 ->> || <> != == 'a''b'");
        let sig: Vec<_> = k.into_iter().filter(|(k, _)| *k != Whitespace).collect();
        assert_eq!(
            sig,
            vec![
                (Blob, "x'0aFF'"),
                (Number, "1e5"),
                (Number, ".5"),
                (Number, "0x1F"),
                (Number, "1_000"),
                (Number, "3.14E-2"),
                (Punct, "-"),
                (Number, "1"),
                (Punct, "->>"),
                (Punct, "||"),
                (Punct, "<>"),
                (Punct, "!="),
                (Punct, "=="),
                (String, "'a''b'"),
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "'abc", "\"abc", "[abc", "`abc", "x'0'", "x'zz'", "12abc", "?", "a ! b", "#",
        ] {
            assert!(tokenize(bad).is_err(), "{bad:?} should not tokenize");
        }
        // Unterminated block comments run to the end, as in SQLite.
        assert_eq!(kinds("/* open")[0].0, TokenKind::Comment);
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("\"tab\"\"x\""), "tab\"x");
        assert_eq!(unquote("[a b]"), "a b");
        assert_eq!(unquote("`a``b`"), "a`b");
        assert_eq!(unquote("'it''s'"), "it's");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
    }
}
