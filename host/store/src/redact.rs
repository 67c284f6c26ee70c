//! URLs as messages show them: without userinfo (a password or token
//! before `@`), query or fragment, which is where store URLs, webhook
//! URLs and relays carry their secrets. Everything past the last `@` is
//! kept, so a secret containing `/`, `?` or `#` is still cut away whole.

/// `url` fit for an error message or a log line.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if scheme.is_empty() {
        rest.to_string()
    } else {
        format!("{scheme}://{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn userinfo_query_and_fragment_never_reach_a_message() {
        for (url, shown) in [
            (
                "postgres://sync:Hunter2-Pa55@db.school.example:5432/rostersync",
                "postgres://db.school.example:5432/rostersync",
            ),
            (
                "postgres://sync:pa/ss?w@rd@db.example/rs",
                "postgres://db.example/rs",
            ),
            (
                "https://hooks.example.org/services/T0/B0?token=xoxb-SECRET#frag",
                "https://hooks.example.org/services/T0/B0",
            ),
            ("sqlite://rostersync.db", "sqlite://rostersync.db"),
            ("ftp://user:pw@x", "ftp://x"),
            ("user:pw@host/db", "host/db"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_opened_is_named_without_its_password() {
        for url in [
            // Nothing listens on port 1.
            "postgres://sync:Hunter2-Pa55@127.0.0.1:1/rostersync",
            "mysql://sync:Hunter2-Pa55@127.0.0.1/rostersync",
        ] {
            let error = crate::Store::open(url).await.err().unwrap().to_string();
            assert!(error.contains("127.0.0.1"), "{error}");
            assert!(!error.contains("Hunter2-Pa55"), "{error}");
        }
    }
}
