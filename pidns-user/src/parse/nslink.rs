//! Namespace identity from the text of a `/proc/<pid>/ns/<type>` link.
//!
//! The kernel renders these links as `pid:[4026531836]`. Reading the link text
//! (readlink) rather than `stat`ing the target is what lets pidns work on
//! evidence and fixture trees, where the links are plain symlinks.

/// Parses `"<type>:[<inode>]"` and returns the type and the inode number.
pub fn parse(text: &[u8]) -> Option<(&[u8], u64)> {
    let open = text.iter().position(|&b| b == b':')?;
    let (kind, rest) = text.split_at(open);
    let inner = rest.strip_prefix(b":[")?.strip_suffix(b"]")?;
    if kind.is_empty() || inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let inode = std::str::from_utf8(inner).ok()?.parse().ok()?;
    Some((kind, inode))
}

/// Parses a link that must be of the given namespace type.
pub fn parse_typed(text: &[u8], expected: &str) -> Option<u64> {
    match parse(text)? {
        (kind, inode) if kind == expected.as_bytes() => Some(inode),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_rendering() {
        assert_eq!(parse(b"pid:[4026531836]"), Some((&b"pid"[..], 4026531836)));
        assert_eq!(parse_typed(b"mnt:[4026531832]", "mnt"), Some(4026531832));
        assert_eq!(
            parse_typed(b"pid_for_children:[1]", "pid_for_children"),
            Some(1)
        );
    }

    #[test]
    fn rejects_other_types_and_junk() {
        assert_eq!(parse_typed(b"net:[4026531833]", "pid"), None);
        for junk in [
            &b""[..],
            b"pid",
            b"pid:",
            b"pid:[]",
            b"pid:[12a]",
            b"pid:[-1]",
            b":[12]",
            b"pid:[99999999999999999999999]",
            b"pid:[12]\n",
            b"/proc/1/ns/pid",
        ] {
            assert_eq!(parse(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
    }
}
