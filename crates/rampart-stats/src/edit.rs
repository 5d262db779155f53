//! Edit distance between strings, used to compare model outputs.
//!
//! Levenshtein distance over Unicode scalar values (`char`s): no byte semantics, no grapheme
//! clustering, no normalization (precomposed `é` differs from `e` + U+0301).

/// Levenshtein distance between `a` and `b` over `char`s (unit-cost insertion, deletion and
/// substitution; no transposition). Source: Levenshtein (1966); Wagner & Fischer (1974)
/// dynamic programme, two rows, O(|a|·|b|) time, O(min) memory.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (long, short) = if a.len() >= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if short.is_empty() {
        return long.len();
    }
    let mut prev: Vec<usize> = (0..=short.len()).collect();
    let mut cur = vec![0usize; short.len() + 1];
    for (i, &ca) in long.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in short.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// Normalized similarity `1 − distance / max(len_a, len_b)` in `[0, 1]`; `1.0` when both
/// strings are empty. Lengths are counted in `char`s.
pub fn similarity(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(a, b) as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classics() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("café", "cafe\u{301}"), 2);
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("ab", "ba"), 0.0);
    }
}
