//! The tokenizer of the comparison: one pass over a text gives its [`normalize`]d bytes, the
//! hash of each normalized word, and its length in characters and whitespace tokens. Allocates
//! nothing per text when the caller reuses its buffers.

/// Lowercase, punctuation removed (apostrophes dropped, other punctuation → space), whitespace
/// runs collapsed to one space, trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into `out` (cleared first), so a caller can reuse one buffer.
pub fn normalize_into(text: &str, out: &mut String) {
    let mut bytes = Vec::with_capacity(text.len());
    scan(text, &mut bytes, &mut Vec::new());
    out.clear();
    // `scan` writes whole characters only, so this never replaces anything.
    out.push_str(&String::from_utf8_lossy(&bytes));
}

/// What one pass over a text gives: its length in characters and whitespace tokens.
pub(super) struct Scan {
    pub(super) chars: u64,
    pub(super) tokens: u64,
}

/// The 64-bit hash of one normalized word: its length, then its bytes eight at a time, each
/// mixed by a multiply and a shift (words are short: usually one round).
pub(super) fn word_hash(word: &[u8]) -> u64 {
    let mut h = (word.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in word.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

/// ASCII byte classes for [`scan`].
const WS: u8 = 0; // whitespace (ends a token and a word)
const PUNCT: u8 = 1; // other non-alphanumeric (ends a word)
const ALNUM: u8 = 2;
const APOSTROPHE: u8 = 3; // dropped
const ASCII_CLASS: [u8; 128] = {
    let mut t = [PUNCT; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            ALNUM
        } else if b == b'\'' {
            APOSTROPHE
        } else if matches!(b, 9..=13 | b' ') {
            // Exactly `char::is_whitespace` on ASCII.
            WS
        } else {
            PUNCT
        };
        i += 1;
    }
    t
};

/// Normalizing state of [`scan`].
struct Words<'a> {
    out: &'a mut Vec<u8>,
    hashes: &'a mut Vec<u64>,
    /// Where the current word starts in `out`.
    start: usize,
    in_word: bool,
    pending_space: bool,
}

impl Words<'_> {
    /// Starts a new word if a separator came since the last letter.
    fn begin(&mut self) {
        if self.pending_space && self.in_word {
            self.end();
            self.out.push(b' ');
            self.start = self.out.len();
        }
        self.pending_space = false;
        self.in_word = true;
    }

    /// Hashes the current word.
    fn end(&mut self) {
        self.hashes
            .push(word_hash(self.out.get(self.start..).unwrap_or_default()));
    }

    fn push(&mut self, ch: char) {
        let mut buf = [0u8; 4];
        self.out
            .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
}

/// One pass over `text`: writes its [`normalize`]d form to `out` and the [`word_hash`] of each
/// normalized word to `words` (both cleared first; `out` is UTF-8 made of whole characters),
/// and counts characters and whitespace
/// tokens ([`token_count`]). ASCII bytes are classified by a table; other characters are
/// decoded and use Unicode's `is_alphanumeric`, `is_whitespace` and `to_lowercase`.
pub(super) fn scan(text: &str, out: &mut Vec<u8>, words: &mut Vec<u64>) -> Scan {
    out.clear();
    words.clear();
    let mut w = Words {
        out,
        hashes: words,
        start: 0,
        in_word: false,
        pending_space: false,
    };
    let (mut chars, mut tokens) = (0u64, 0u64);
    let mut in_token = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        chars += 1;
        if b < 0x80 {
            i += 1;
            let class = ASCII_CLASS[usize::from(b)];
            let ws = class == WS;
            tokens += u64::from(!ws && !in_token);
            in_token = !ws;
            match class {
                ALNUM => {
                    w.begin();
                    w.out.push(b.to_ascii_lowercase());
                }
                APOSTROPHE => {}
                _ => w.pending_space = true,
            }
            continue;
        }
        let Some(ch) = text.get(i..).and_then(|t| t.chars().next()) else {
            break;
        };
        i += ch.len_utf8();
        let ws = ch.is_whitespace();
        tokens += u64::from(!ws && !in_token);
        in_token = !ws;
        if ch == '’' {
            continue;
        }
        if ch.is_alphanumeric() {
            w.begin();
            for l in ch.to_lowercase() {
                w.push(l);
            }
        } else {
            w.pending_space = true;
        }
    }
    if w.in_word {
        w.end();
    }
    Scan { chars, tokens }
}

/// The first `words` words of an already [`normalize`]d text (a prefix of it: words are
/// separated by exactly one space); `None` when it has none.
pub(super) fn opening_of_normalized(normalized: &[u8], words: usize) -> Option<String> {
    if normalized.is_empty() || words == 0 {
        return None;
    }
    let end = normalized
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b' ')
        .nth(words - 1)
        .map_or(normalized.len(), |(i, _)| i);
    // Cut at a space, so whole characters: never replaces anything.
    Some(String::from_utf8_lossy(normalized.get(..end).unwrap_or_default()).into_owned())
}

/// The first `words` words of the normalized text; `None` when it has none.
pub fn opening_phrase(text: &str, words: usize) -> Option<String> {
    opening_of_normalized(normalize(text).as_bytes(), words)
}

/// Whitespace-separated tokens (an approximation of model tokens; ≈ 0.75 per BPE token in
/// English).
pub fn token_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}
