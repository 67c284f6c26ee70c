//! Distinguished names as RFC 4514 writes them: building an entry's DN
//! under a container, splitting one into its RDNs, and comparing two DNs
//! the way a server does (attribute types and the values of the usual
//! case-ignoring attributes without regard to case or the spaces around
//! separators).

/// Splits a DN (or a container, a DN relative to the base) into its RDNs
/// at the commas that are not escaped.
pub fn rdns(dn: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(dn[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(dn[start..].trim());
    parts.retain(|part| !part.is_empty());
    parts
}

/// `container,base`, or the base alone.
pub fn under(container: Option<&str>, base: &str) -> String {
    match container.map(str::trim).filter(|c| !c.is_empty()) {
        Some(container) => format!("{container},{base}"),
        None => base.to_string(),
    }
}

/// An RDN `attr=value` with the value escaped.
pub fn rdn(attr: &str, value: &str) -> String {
    format!("{attr}={}", ldap3::dn_escape(value))
}

/// An RDN split into its attribute type and its unescaped value.
pub fn split_rdn(rdn: &str) -> Option<(&str, String)> {
    let (attr, value) = rdn.split_once('=')?;
    Some((attr.trim(), unescape(value.trim())))
}

/// The first RDN and the rest (the parent).
pub fn split_first(dn: &str) -> (&str, &str) {
    let parts = rdns(dn);
    match parts.first() {
        Some(first) => {
            let rest = dn[dn.find(first).unwrap_or(0) + first.len()..]
                .trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            (first, rest)
        }
        None => ("", ""),
    }
}

/// Undoes RFC 4514 §2.4 escaping: `\,` and the like, and `\2C` hex pairs.
pub fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\' && at + 1 < bytes.len() {
            let pair = bytes
                .get(at + 1..at + 3)
                .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok());
            match pair {
                Some(byte) => {
                    out.push(byte);
                    at += 3;
                }
                None => {
                    out.push(bytes[at + 1]);
                    at += 2;
                }
            }
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A DN reduced for comparison: RDNs trimmed, lower case.
pub fn normal(dn: &str) -> String {
    rdns(dn)
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => format!("{}={}", attr.trim(), value.trim()),
            None => rdn.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Whether two DNs name the same entry.
pub fn same(a: &str, b: &str) -> bool {
    normal(a) == normal(b)
}

/// The container of `dn` relative to `base`: the RDNs between the entry's
/// own and the base's; `None` when the entry sits right under the base or
/// outside it.
pub fn container_of(dn: &str, base: &str) -> Option<String> {
    let parts = rdns(dn);
    let base_len = rdns(base).len();
    if parts.len() <= base_len + 1 || !normal(dn).ends_with(&normal(base)) {
        return None;
    }
    Some(parts[1..parts.len() - base_len].join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_unescaped_commas() {
        assert_eq!(
            rdns(r"cn=Smith\, John,ou=Year 7, ou=Students"),
            [r"cn=Smith\, John", "ou=Year 7", "ou=Students"]
        );
        assert_eq!(
            split_first("uid=a,ou=Year 7,dc=school,dc=test"),
            ("uid=a", "ou=Year 7,dc=school,dc=test")
        );
    }

    #[test]
    fn escapes_and_unescapes_values() {
        let made = rdn("cn", "Smith, John");
        assert_eq!(split_rdn(&made).unwrap(), ("cn", "Smith, John".to_string()));
        assert_eq!(unescape(r"a\2Cb\+c"), "a,b+c");
    }

    #[test]
    fn compares_like_a_server() {
        assert!(same(
            "UID=a, OU=Year 7,DC=School,DC=Test",
            "uid=a,ou=year 7,dc=school,dc=test"
        ));
        assert_eq!(
            container_of(
                "uid=a,ou=Year 7,ou=Students,dc=school,dc=test",
                "dc=school, dc=test"
            ),
            Some("ou=Year 7,ou=Students".to_string())
        );
        assert_eq!(
            container_of("uid=a,dc=school,dc=test", "dc=school,dc=test"),
            None
        );
        assert_eq!(
            under(Some("ou=Staff"), "dc=school,dc=test"),
            "ou=Staff,dc=school,dc=test"
        );
    }
}
