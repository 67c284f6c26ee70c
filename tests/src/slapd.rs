//! A real OpenLDAP server for the directory target's suite: Debian's
//! `/usr/sbin/slapd` (packages `slapd` and `ldap-utils`, which `.ci/run`
//! installs) on a free 127.0.0.1 port, configured by a generated
//! slapd.conf(5) in a temporary folder: the mdb backend, the suffix
//! `dc=school,dc=test` with its root entry, and the core, cosine,
//! inetOrgPerson and nis schemas Debian ships in /etc/ldap/schema. The
//! server is killed on drop; [`Slapd::stop`] and [`Slapd::resume`] make an
//! outage that keeps the data. [`Slapd::start_with`] can also listen for LDAPS
//! with a server certificate from a test CA that `openssl` makes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, Scope, SearchEntry};

use crate::free_port;

pub const SUFFIX: &str = "dc=school,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=school,dc=test";
pub const ROOT_PASSWORD: &str = "slapd-root-secret";
const SLAPD: &str = "/usr/sbin/slapd";
const SCHEMAS: [&str; 4] = ["core", "cosine", "inetorgperson", "nis"];

/// Active Directory's user and group classes and the attributes the
/// directory target writes there, under their Active Directory OIDs
/// ([MS-ADA1]–[MS-ADA3], [MS-ADSC]), so the target's Active Directory
/// flavour runs against a real LDAP server. It is the shape only: slapd
/// neither hashes `unicodePwd` nor enforces the domain's rules.
const AD_SHAPED_SCHEMA: &str = r#"
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.35 NAME 'employeeID'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.90 NAME 'unicodePwd'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.226 NAME 'adminDescription'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
    MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ employeeID $
          unicodePwd $ mail $ displayName $ givenName ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL
    MUST cn MAY ( member $ adminDescription $ description ) )
"#;

/// What the server speaks besides plain LDAP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also LDAPS, with a certificate from a test CA.
    pub tls: bool,
    /// Also Active Directory's user and group schema.
    pub ad_shaped: bool,
}

pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    /// The LDAPS port, when it speaks TLS too.
    tls_port: Option<u16>,
    child: Option<tokio::process::Child>,
}

/// Runs `openssl` with `args` in `dir`, panicking with its output if it
/// fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Slapd {
    /// A fresh directory holding only the suffix's entry.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// [`Slapd::start`] with `options`: with `tls`, it also serves LDAPS at
    /// [`Slapd::tls_url`] with a certificate for 127.0.0.1 issued by the CA
    /// at [`Slapd::ca_file`].
    pub async fn start_with(options: Options) -> Self {
        let tls = options.tls;
        assert!(
            std::path::Path::new(SLAPD).exists(),
            "{SLAPD} is missing: install Debian's slapd and ldap-utils (see .ci/run)"
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut includes: String = SCHEMAS
            .iter()
            .map(|schema| format!("include /etc/ldap/schema/{schema}.schema\n"))
            .collect();
        if options.ad_shaped {
            let schema = dir.path().join("ad-shaped.schema");
            std::fs::write(&schema, AD_SHAPED_SCHEMA).unwrap();
            includes.push_str(&format!("include {}\n", schema.display()));
        }
        let tls_config = if tls {
            let at = dir.path();
            openssl(
                at,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=rostersync test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
            openssl(
                at,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                ],
            );
            std::fs::write(
                at.join("server.ext"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(
                at,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
                    "-out",
                    "server.pem",
                ],
            );
            format!(
                "TLSCACertificateFile {dir}/ca.pem\nTLSCertificateFile {dir}/server.pem\n\
                 TLSCertificateKeyFile {dir}/server.key\n",
                dir = at.display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "{includes}pidfile {pid}\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n{tls_config}\
             database mdb\nmaxsize 268435456\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PASSWORD}\ndirectory {data}\n\
             index objectClass,uid,mail,employeeNumber,member,businessCategory eq\n",
            pid = dir.path().join("slapd.pid").display(),
            data = data.display(),
        );
        std::fs::write(dir.path().join("slapd.conf"), config).unwrap();
        let mut slapd = Self {
            dir,
            port: free_port(),
            tls_port: tls.then(free_port),
            child: None,
        };
        slapd.resume().await;
        let mut ldap = slapd.admin().await;
        let set = |values: &[&'static str]| values.iter().copied().collect::<HashSet<_>>();
        ldap.add(
            SUFFIX,
            vec![
                ("objectClass", set(&["dcObject", "organization"])),
                ("o", set(&["Test School"])),
                ("dc", set(&["school"])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The LDAPS address, when started with `tls`.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("ldaps://127.0.0.1:{port}"))
    }

    /// The PEM file of the CA that issued the LDAPS certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("slapd.log")
    }

    /// Starts slapd in the foreground on the same port and data, and waits
    /// until it takes a bind.
    pub async fn resume(&mut self) {
        let log = std::fs::File::create(self.log()).unwrap();
        let child = tokio::process::Command::new(SLAPD)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(
                [Some(self.url()), self.tls_url()]
                    .into_iter()
                    .flatten()
                    .map(|url| format!("{url}/"))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..200 {
            if self.try_admin().await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "slapd did not answer on {}: {}",
            self.url(),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    /// Kills slapd (mdb survives a kill) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    async fn try_admin(&self) -> Option<Ldap> {
        let (conn, mut ldap) = LdapConnAsync::new(&self.url()).await.ok()?;
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
            .await
            .ok()?
            .success()
            .ok()?;
        Some(ldap)
    }

    /// A connection bound as the root DN, independent of any target.
    pub async fn admin(&self) -> Ldap {
        self.try_admin().await.expect("slapd takes the root bind")
    }

    /// Every entry under `base` matching `filter`, with its operational
    /// attributes (`entryUUID`) too.
    pub async fn search(&self, base: &str, filter: &str) -> Vec<SearchEntry> {
        let mut ldap = self.admin().await;
        let ldap3::SearchResult(entries, result) = ldap
            .search(base, Scope::Subtree, filter, vec!["*", "+"])
            .await
            .unwrap();
        if result.rc == 32 {
            return Vec::new();
        }
        result.success().unwrap();
        entries.into_iter().map(SearchEntry::construct).collect()
    }

    /// The entry at `dn`, if there is one.
    pub async fn entry(&self, dn: &str) -> Option<SearchEntry> {
        let mut ldap = self.admin().await;
        let ldap3::SearchResult(entries, result) = ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec!["*", "+"])
            .await
            .unwrap();
        if result.rc == 32 {
            return None;
        }
        result.success().unwrap();
        entries.into_iter().next().map(SearchEntry::construct)
    }

    /// Whether `dn` binds with `password`.
    pub async fn binds(&self, dn: &str, password: &str) -> bool {
        let (conn, mut ldap) = LdapConnAsync::new(&self.url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(dn, password).await.unwrap().rc == 0
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
