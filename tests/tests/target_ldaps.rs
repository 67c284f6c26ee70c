//! The directory target over LDAPS against a real slapd: the connection
//! is encrypted and verified against the system's trust store, here a test
//! CA named by `SSL_CERT_FILE` (which the TLS stack reads once, at its
//! first connection, so this suite is a binary of its own); the bind,
//! the add and the initial password all go over it.

use rostersync_ldap::LdapTarget;
use rostersync_ldap::settings::name;
use rostersync_model::target::{ChangeItem, Outcome, Target, TargetChange, TargetRole, TargetUser};
use rostersync_model::{Settings, SyncError};
use rostersync_tests::slapd::{ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};

#[tokio::test]
async fn the_directory_target_provisions_over_ldaps_verifying_the_server() {
    let slapd = Slapd::start_tls().await;
    // SAFETY: this binary's only test sets it before any TLS connection
    // is made and nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("SSL_CERT_FILE", slapd.ca_file()) };
    let tls = slapd.tls_url().expect("slapd speaks LDAPS");
    let settings = Settings::new()
        .with(name::URL, tls.as_str())
        .with(name::BIND_DN, ROOT_DN)
        .with(name::BIND_PASSWORD, ROOT_PASSWORD)
        .with(name::BASE_DN, SUFFIX);
    let target = LdapTarget::open(&settings).unwrap();
    target.check().await.unwrap();

    let user = TargetUser {
        external_id: "acc-1".into(),
        username: "ava.smith".into(),
        email: Some("ava.smith@school.test".into()),
        given_name: Some("Ava".into()),
        family_name: Some("Smith".into()),
        display_name: "Ava Smith".into(),
        role: TargetRole::Student,
        active: true,
        container: Some("ou=Year 7,ou=Students".into()),
        initial_password: Some("Tr0ub4dor&3-over-tls".into()),
        attributes: Vec::new(),
    };
    let outcomes = target
        .apply(vec![ChangeItem {
            key: "k1".into(),
            change: TargetChange::CreateUser { user },
        }])
        .await
        .unwrap();
    let Outcome::Done(dn) = &outcomes[0].outcome else {
        panic!("{outcomes:?}")
    };
    assert!(
        slapd.binds(dn, "Tr0ub4dor&3-over-tls").await,
        "the password set over LDAPS works"
    );

    // The same server named by a host its certificate does not carry is
    // refused, not trusted.
    let wrong_name = Settings::new()
        .with(name::URL, tls.replace("127.0.0.1", "localhost").as_str())
        .with(name::BIND_DN, ROOT_DN)
        .with(name::BIND_PASSWORD, ROOT_PASSWORD)
        .with(name::BASE_DN, SUFFIX);
    let err = LdapTarget::open(&wrong_name)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unavailable(_)), "{err:?}");
}
