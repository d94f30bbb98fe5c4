//! API versions. Publishers write `1.0`, clients call `/1.0.0`: both must reach the same API,
//! so every version is reduced to a canonical form before it is stored or looked up.

/// Reduces a version to the form used as a routing key.
///
/// Numeric dotted versions lose trailing `.0` components past the first (`1.0.0` → `1`,
/// `2.1.0` → `2.1`), so that `1`, `1.0` and `1.0.0` are one key. Anything else (`v2`,
/// `beta`) is kept as written: guessing equivalences there would route to the wrong API.
pub fn canonical(version: &str) -> &str {
    let numeric = !version.is_empty()
        && version.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return version;
    }
    let mut end = version.len();
    while let Some(dot) = version[..end].rfind('.') {
        if version[dot + 1..end].bytes().all(|b| b == b'0') {
            end = dot;
        } else {
            break;
        }
    }
    &version[..end]
}

/// Whether `version` may be used as a path segment: no slash, no query or fragment marker,
/// no whitespace, not empty.
pub fn is_valid(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 64
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zero_components_are_dropped() {
        assert_eq!(canonical("1.0"), "1");
        assert_eq!(canonical("1.0.0"), "1");
        assert_eq!(canonical("1"), "1");
        assert_eq!(canonical("2.1.0"), "2.1");
        assert_eq!(canonical("2.0.1"), "2.0.1");
        assert_eq!(canonical("10.00"), "10");
    }

    #[test]
    fn non_numeric_versions_are_kept() {
        assert_eq!(canonical("v1.0"), "v1.0");
        assert_eq!(canonical("1.0-beta"), "1.0-beta");
        assert_eq!(canonical("1..0"), "1..0");
    }

    #[test]
    fn path_unsafe_versions_are_invalid() {
        assert!(is_valid("1.0.0"));
        assert!(is_valid("v2-beta"));
        assert!(!is_valid(""));
        assert!(!is_valid("1/0"));
        assert!(!is_valid("1.0?x"));
        assert!(!is_valid("1 0"));
    }
}
