//! Redis's glob patterns (`KEYS`, `SCAN MATCH`): `*` any run of bytes, `?`
//! one byte, `[abc]` / `[^abc]` / `[a-z]` a class, `\x` the byte `x`.
//! Matching is on bytes, as Redis's `stringmatchlen` does.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = if p < pattern.len() {
            one(pattern, p, text[t])
        } else {
            None
        };
        match step {
            Some(Step::Star) => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(Step::Matched(next)) => {
                p = next;
                t += 1;
            }
            None => match star {
                Some((after, from)) => {
                    p = after;
                    t = from + 1;
                    star = Some((after, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

enum Step {
    /// A `*`: matches any run.
    Star,
    /// The element at `p` matched the byte; the next element starts here.
    Matched(usize),
}

/// Matches the pattern element at `p` against one byte.
fn one(pattern: &[u8], p: usize, byte: u8) -> Option<Step> {
    match pattern[p] {
        b'*' => Some(Step::Star),
        b'?' => Some(Step::Matched(p + 1)),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(Step::Matched(p + 2)),
        b'[' => class(pattern, p + 1, byte),
        literal => (literal == byte).then_some(Step::Matched(p + 1)),
    }
}

/// A `[...]` class starting after its `[`; an unclosed class runs to the
/// end of the pattern, as in Redis.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<Step> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut hit = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            hit |= pattern[p + 1] == byte;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (a, b) = (pattern[p].min(pattern[p + 2]), pattern[p].max(pattern[p + 2]));
            hit |= (a..=b).contains(&byte);
            p += 3;
        } else {
            hit |= pattern[p] == byte;
            p += 1;
        }
    }
    let next = (p + 1).min(pattern.len());
    (hit != negate).then_some(Step::Matched(next))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_like_redis() {
        let yes = |p: &str, t: &str| assert!(matches(p.as_bytes(), t.as_bytes()), "{p} ~ {t}");
        let no = |p: &str, t: &str| assert!(!matches(p.as_bytes(), t.as_bytes()), "{p} !~ {t}");
        yes("*", "");
        yes("*", "anything");
        yes("h?llo", "hello");
        no("h?llo", "hllo");
        yes("h*llo", "heeeello");
        yes("h*llo", "hllo");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        no("h[a-b]llo", "hcllo");
        yes("h\\*llo", "h*llo");
        no("h\\*llo", "hello");
        yes("user:*:name", "user:42:name");
        no("user:*:name", "user:42:mail");
        yes("*a*b*c", "xxaxxbxxc");
        no("*a*b*c", "xxaxxcxxb");
        yes("[z-a]", "m");
        no("abc", "abcd");
        no("abc*d", "abc");
    }
}
