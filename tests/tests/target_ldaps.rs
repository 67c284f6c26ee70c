//! The directory target over LDAPS against a real slapd: the connection
//! is encrypted and verified against the system's trust store, here a test
//! CA named by `SSL_CERT_FILE`. The TLS stack reads that once, at its
//! first connection, so this suite is a binary of its own with one test.
//!
//! Over it, the OpenLDAP flavour binds, adds and sets a password; and the
//! Active Directory flavour runs against the same server carrying Active
//! Directory's user and group schema (`rostersync_tests::slapd`), which is
//! its shape only (slapd does not hash `unicodePwd` nor enforce a domain's
//! rules), so what is checked is what the target writes: `unicodePwd` as
//! [MS-ADTS] 3.1.1.3.1.5.1 has it, the account enabled (512) only after its
//! password, disabled (514) on suspension, and a second person of the same
//! name in an OU under `CN=<name> (<login>)`.

use rostersync_ldap::LdapTarget;
use rostersync_ldap::settings::name;
use rostersync_model::target::{
    ChangeItem, ObjectRef, Outcome, Target, TargetChange, TargetRole, TargetUser,
};
use rostersync_model::{Settings, SyncError};
use rostersync_tests::slapd::{Options, ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};

fn settings(url: &str, flavour: &str) -> Settings {
    Settings::new()
        .with(name::URL, url)
        .with(name::BIND_DN, ROOT_DN)
        .with(name::BIND_PASSWORD, ROOT_PASSWORD)
        .with(name::BASE_DN, SUFFIX)
        .with(name::FLAVOUR, flavour)
}

fn pupil(external_id: &str, username: &str, password: &str) -> TargetUser {
    TargetUser {
        external_id: external_id.into(),
        username: username.into(),
        email: Some(format!("{username}@school.test")),
        given_name: Some("Ava".into()),
        family_name: Some("Smith".into()),
        display_name: "Ava Smith".into(),
        role: TargetRole::Student,
        active: true,
        container: Some("ou=Year 7,ou=Students".into()),
        initial_password: Some(password.into()),
        attributes: Vec::new(),
    }
}

/// Applies `changes` in one batch; answers each change's DN.
async fn done(target: &LdapTarget, changes: Vec<TargetChange>) -> Vec<String> {
    let items = changes
        .into_iter()
        .enumerate()
        .map(|(at, change)| ChangeItem {
            key: format!("key-{at}"),
            change,
        })
        .collect();
    target
        .apply(items)
        .await
        .unwrap()
        .into_iter()
        .map(|result| match result.outcome {
            Outcome::Done(dn) => dn,
            other => panic!("expected done, got {other:?}"),
        })
        .collect()
}

/// One attribute's values as bytes, wherever the client filed them.
fn bytes(entry: &ldap3::SearchEntry, attr: &str) -> Vec<Vec<u8>> {
    let text = entry.attrs.get(attr).into_iter().flatten();
    let binary = entry.bin_attrs.get(attr).into_iter().flatten();
    text.map(|v| v.as_bytes().to_vec())
        .chain(binary.cloned())
        .collect()
}

fn utf16le_quoted(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[tokio::test]
async fn the_directory_target_provisions_over_ldaps_verifying_the_server() {
    let slapd = Slapd::start_with(Options {
        tls: true,
        ad_shaped: true,
    })
    .await;
    // SAFETY: this binary's only test sets it before any TLS connection
    // is made, and nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("SSL_CERT_FILE", slapd.ca_file()) };
    let tls = slapd.tls_url().expect("slapd speaks LDAPS");

    // OpenLDAP over LDAPS: the bind, an add and the password.
    let openldap = LdapTarget::open(&settings(&tls, "openldap")).unwrap();
    openldap.check().await.unwrap();
    let made = done(
        &openldap,
        vec![TargetChange::CreateUser {
            user: pupil("acc-1", "ava.smith", "Tr0ub4dor&3-over-tls"),
        }],
    )
    .await;
    assert!(
        slapd.binds(&made[0], "Tr0ub4dor&3-over-tls").await,
        "the password set over LDAPS works"
    );

    // The same server under a name its certificate does not carry is
    // refused, not trusted.
    let wrong_name = LdapTarget::open(&settings(
        &tls.replace("127.0.0.1", "localhost"),
        "openldap",
    ))
    .unwrap();
    let err = wrong_name.check().await.unwrap_err();
    assert!(matches!(err, SyncError::Unavailable(_)), "{err:?}");

    // The Active Directory flavour: two pupils called Ava Smith in Year 7.
    let ad = LdapTarget::open(&settings(&tls, "active-directory")).unwrap();
    let made = done(
        &ad,
        vec![
            TargetChange::CreateUser {
                user: pupil("acc-2", "ava.smith2", "First-Ava-pw1"),
            },
            TargetChange::CreateUser {
                user: pupil("acc-3", "ava.smith3", "Second-Ava-pw2"),
            },
        ],
    )
    .await;
    let year_7 = format!("ou=Year 7,ou=Students,{SUFFIX}");
    assert_eq!(
        made,
        [
            format!("CN=Ava Smith,{year_7}"),
            format!("CN=Ava Smith (ava.smith3),{year_7}"),
        ],
        "the second of one name takes her login into her CN"
    );
    for (dn, login, password) in [
        (&made[0], "ava.smith2", "First-Ava-pw1"),
        (&made[1], "ava.smith3", "Second-Ava-pw2"),
    ] {
        let entry = slapd.entry(dn).await.expect("the account exists");
        assert_eq!(bytes(&entry, "unicodePwd"), [utf16le_quoted(password)]);
        assert_eq!(
            entry.attrs["userAccountControl"],
            ["512"],
            "enabled after its password"
        );
        assert_eq!(entry.attrs["sAMAccountName"], [login]);
        assert_eq!(
            entry.attrs["userPrincipalName"],
            [format!("{login}@school.test")]
        );
    }

    // Suspended: ACCOUNTDISABLE set.
    done(
        &ad,
        vec![TargetChange::SuspendUser {
            object: ObjectRef {
                external_id: "acc-3".into(),
                target_id: Some(made[1].clone()),
            },
        }],
    )
    .await;
    let suspended = slapd.entry(&made[1]).await.unwrap();
    assert_eq!(suspended.attrs["userAccountControl"], ["514"]);
}
