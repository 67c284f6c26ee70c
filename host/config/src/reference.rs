//! The configuration reference (`rostersync config reference`, and the
//! committed `docs/configuration.md`), generated from the types the parser
//! reads, so it cannot drift from them:
//!
//! - the keys of each section are the parser's own: each type is asked to
//!   read an unknown key, and refuses it naming every key it accepts;
//! - a default is the type's `Default`, serialised, wherever the type has
//!   one; the words for the others sit beside the key;
//! - every key must have words here, and every word a key, or generation
//!   fails; and each section's examples together must parse.
//!
//! A new field without a line here fails `cargo test`; so does a
//! committed reference that differs from what this generates.

use std::collections::BTreeSet;

use rostersync_admin::{AdminConfig, TokenConfig};
use rostersync_core::targets::{LifecycleHold, TargetPolicy, Templates};
use rostersync_core::{HoldPolicy, MatchPolicy, ValidationPolicy};
use rostersync_deliver::{PasswordPolicy, TargetConfig};
use rostersync_notify::{EmailConfig, WebhookConfig};
use rostersync_schedule::{Blackout, RunSpec, ScheduleConfig};
use rostersync_sync::{ConnectionConfig, LimitsConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Config;

/// One key: what it does, its default when the type has none to
/// serialise, and an example value (TOML).
struct Key {
    name: &'static str,
    doc: &'static str,
    default: &'static str,
    example: &'static str,
}

const fn key(
    name: &'static str,
    doc: &'static str,
    default: &'static str,
    example: &'static str,
) -> Key {
    Key {
        name,
        doc,
        default,
        example,
    }
}

/// One table of the file.
struct Section {
    /// Where it is written: `[admin]`, `[[connections]]`, `holds`, ...
    title: &'static str,
    about: &'static str,
    /// The keys the parser accepts, in its order.
    fields: fn() -> Vec<String>,
    /// Defaults by key, from the type's `Default`, where it has one.
    defaults: fn() -> Vec<(String, String)>,
    /// Parses the section written with every example: `Err` if the parser
    /// refuses it.
    parses: fn(&str) -> Result<(), String>,
    keys: &'static [Key],
}

/// The keys `T` accepts: the parser names them when refusing an unknown
/// one (`unknown field `…`, expected one of `a`, `b``).
fn fields_of<T: DeserializeOwned>() -> Vec<String> {
    let refusal = match toml::from_str::<T>("not-a-key-of-any-section = 0") {
        Ok(_) => return Vec::new(),
        Err(error) => error.message().to_string(),
    };
    let Some((_, expected)) = refusal.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `T::default()`'s keys and values, as TOML.
fn defaults_of<T: Default + Serialize>() -> Vec<(String, String)> {
    match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(table)) => table
            .into_iter()
            .map(|(key, value)| (key, value.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

fn no_defaults() -> Vec<(String, String)> {
    Vec::new()
}

fn parses<T: DeserializeOwned>(text: &str) -> Result<(), String> {
    toml::from_str::<T>(text)
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

/// A target is also checked for keys neither it nor its policy knows.
fn target_parses(text: &str) -> Result<(), String> {
    let mut target: TargetConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
    target.resolve(|_| Some("example".into()))
}

/// The keys written directly in a `[[targets]]` entry: it flattens its
/// policy into itself, so it cannot name its keys when refusing one.
fn target_fields() -> Vec<String> {
    let mut fields: Vec<String> = TargetConfig::KEYS.into_iter().map(str::to_string).collect();
    fields.extend(fields_of::<TargetPolicy>());
    fields
}

fn target_defaults() -> Vec<(String, String)> {
    defaults_of::<TargetPolicy>()
        .into_iter()
        .filter(|(key, _)| key != "templates" && key != "hold")
        .collect()
}

const NONE: &str = "none";

static SECTIONS: &[Section] = &[
    Section {
        title: "top level",
        about: "The file as a whole: the store, the plugin folder, and the tables below.",
        fields: fields_of::<Config>,
        defaults: no_defaults,
        parses: parses::<Config>,
        keys: &[
            key(
                "store",
                "`sqlite://PATH` or `postgres://USER@HOST/DB`. A relative SQLite path is relative to this file. `ROSTERSYNC_STORE` overrides it.",
                "`\"sqlite://rostersync.db\"`",
                "\"sqlite://rostersync.db\"",
            ),
            key(
                "plugin_dir",
                "The folder of connector and target plugins (`*.wasm`), relative to this file; `--plugin-dir` and `ROSTERSYNC_PLUGIN_DIR` override it.",
                "`\"plugins\"`",
                "\"plugins\"",
            ),
            key(
                "connections",
                "The schools' systems to sync: one `[[connections]]` table each (below).",
                "`[]`",
                "[]",
            ),
            key(
                "concurrency",
                "Runs at once across all connections, under `serve`; at least 1.",
                "`4`",
                "4",
            ),
            key(
                "admin",
                "The admin API and dashboard: the `[admin]` table (below).",
                "loopback, no tokens",
                "{ listen = \"127.0.0.1:8080\" }",
            ),
            key(
                "secrets_file",
                "`NAME=value` lines for the secrets the environment does not set, readable by its owner only; relative to this file.",
                NONE,
                "\"rostersync.secrets\"",
            ),
            key(
                "notifications",
                "Who hears when a run is held or fails, or a connection is lost or recovers: `[[notifications]]` tables (below).",
                "`[]`",
                "[]",
            ),
            key(
                "targets",
                "Where the roster is provisioned: `[[targets]]` tables (below).",
                "`[]`",
                "[]",
            ),
        ],
    },
    Section {
        title: "[[connections]]",
        about: "One school's system. `rostersync config check` loads its connector and checks every setting against it.",
        fields: fields_of::<ConnectionConfig>,
        defaults: no_defaults,
        parses: parses::<ConnectionConfig>,
        keys: &[
            key(
                "id",
                "The connection's name in commands, the dashboard and the store. Required; unique.",
                "required",
                "\"north-primary\"",
            ),
            key(
                "connector",
                "The connector plugin's name (its file in the plugin folder without `.wasm`). Required.",
                "required",
                "\"wonde\"",
            ),
            key(
                "settings",
                "The connector's settings by the names it declares (`rostersync plugins describe NAME`), such as `school-id`. Never secrets.",
                "`{}`",
                "{ base-url = \"https://api.wonde.com/v1.0\", school-id = \"A1930499544\" }",
            ),
            key(
                "secrets",
                "Secret settings (tokens, passwords) by the environment variable holding each value, never the value itself.",
                "`{}`",
                "{ api-token = \"NORTH_WONDE_TOKEN\" }",
            ),
            key(
                "extra_hosts",
                "Hosts the connector may call beyond the hosts of its URL settings: the outbound allow-list.",
                "`[]`",
                "[\"auth.example.org\"]",
            ),
            key(
                "drop_folder",
                "A folder the connector reads files from (file-drop providers), relative to this file.",
                NONE,
                "\"drops/north\"",
            ),
            key(
                "provisioning",
                "How people get accounts: the `provisioning` table (below).",
                "create, match on mis-id, email, username",
                "{ mode = \"link\", match_on = [\"mis-id\", \"email\"] }",
            ),
            key(
                "validation",
                "What a record needs to be synced: the `validation` table (below).",
                "see below",
                "{ require_email_for = [\"staff\"] }",
            ),
            key(
                "holds",
                "When a run stops for an operator: the `holds` table (below).",
                "see below",
                "{ max_removal_share = 0.05 }",
            ),
            key(
                "schedule",
                "When the connection runs under `serve`: the `schedule` table (below).",
                "only when asked",
                "{ timezone = \"Europe/London\", runs = [{ cron = \"0 7-17 * * MON-FRI\" }] }",
            ),
            key(
                "limits",
                "The connector's sandbox limits: the `limits` table (below).",
                "the host's limits",
                "{ memory_mb = 256 }",
            ),
        ],
    },
    Section {
        title: "[connections.provisioning]",
        about: "How the people a connection reads get accounts.",
        fields: fields_of::<MatchPolicy>,
        defaults: defaults_of::<MatchPolicy>,
        parses: parses::<MatchPolicy>,
        keys: &[
            key(
                "mode",
                "`create`: make an account for each person. `link`: only link people to existing accounts, reporting every mismatch.",
                "",
                "\"link\"",
            ),
            key(
                "match_on",
                "What links a person to an existing account, tried in this order (`mis-id`, `email`, `username`); the first key that finds anyone decides.",
                "",
                "[\"mis-id\", \"email\"]",
            ),
            key(
                "allowed_email_domains",
                "Email domains accounts may have; empty allows any.",
                "",
                "[\"school.org\"]",
            ),
        ],
    },
    Section {
        title: "[connections.validation]",
        about: "Validation policies: what a record needs to be synced. A record that fails is left out with an issue naming the policy and the fix.",
        fields: fields_of::<ValidationPolicy>,
        defaults: defaults_of::<ValidationPolicy>,
        parses: parses::<ValidationPolicy>,
        keys: &[
            key(
                "require_salutation",
                "Every person must have a salutation (Mr, Ms, Dr, ...).",
                "",
                "true",
            ),
            key(
                "require_email_for",
                "Roles that log in, and so must have an email address (`student`, `staff`, `contact`).",
                "",
                "[\"staff\"]",
            ),
            key(
                "require_start_date",
                "Students and staff must have a start date.",
                "",
                "true",
            ),
            key(
                "require_year_group",
                "Pupils on roll must have a year: their own, or their registration group's.",
                "",
                "true",
            ),
            key(
                "require_registration_group",
                "Pupils on roll must sit in an active registration group the connection reads.",
                "",
                "true",
            ),
            key(
                "contact_name_in_one_field",
                "A contact whose provider gives the whole name in one field is valid when that field holds a full name.",
                "",
                "true",
            ),
            key(
                "use_preferred_first_name",
                "Use the preferred forename, when there is one, as the first name.",
                "",
                "false",
            ),
            key(
                "require_admission_details",
                "Applicants must come with admission details; details that do come are always checked.",
                "",
                "true",
            ),
            key(
                "allowed_admission_statuses",
                "Admission statuses an applicant may have (compared ignoring case).",
                "",
                "[\"offered\", \"accepted\"]",
            ),
            key(
                "leaver_window_months",
                "Leavers are synced for this many months after their leaving date.",
                "",
                "3",
            ),
            key(
                "incomplete_share",
                "A run that leaves out more than this share of one role's people ends `incomplete`: nothing destructive is applied.",
                "",
                "0.2",
            ),
            key(
                "incomplete_min_people",
                "...but only once at least this many people of the role are left out.",
                "",
                "10",
            ),
        ],
    },
    Section {
        title: "[connections.holds]",
        about: "Hold settings: when a run keeps its changes and waits for an operator, who answers by type (removals: Confirm removals or Reject; contacts: Create accounts or Don't create, either remembered until the contacts change; updates: Apply changes or Reject; a lost connection: I fixed it), one type at a time when a run trips several. Shares are weighed per population (students, staff, contacts, each kind of group, memberships, relationships).",
        fields: fields_of::<HoldPolicy>,
        defaults: defaults_of::<HoldPolicy>,
        parses: parses::<HoldPolicy>,
        keys: &[
            key(
                "max_removal_share",
                "Hold when a run would remove more than this share of a population...",
                "",
                "0.05",
            ),
            key(
                "min_removals_for_share",
                "...as long as at least this many would go, so one leaver from a small class does not stop a sync.",
                "",
                "3",
            ),
            key(
                "max_removals",
                "Hold when a run would remove more than this many of a population, whatever the share.",
                "",
                "200",
            ),
            key(
                "max_update_share",
                "Hold when a run would update more than this share of a population...",
                "",
                "0.5",
            ),
            key(
                "min_population_for_update_share",
                "...from a population of this size up.",
                "",
                "50",
            ),
            key(
                "max_contacts_per_student",
                "Hold when a student would have more contacts than this (a contacts hold).",
                "",
                "6",
            ),
            key(
                "accepted_contact_types",
                "Contact types the connection accepts (`primary`, `secondary`, `emergency`, `other`); a contact of another type holds the run (a contacts hold).",
                "",
                "[\"primary\", \"secondary\", \"other\"]",
            ),
            key(
                "disconnected_after",
                "Consecutive runs the provider may be unreachable or refuse the credentials before the connection is held as disconnected.",
                "",
                "5",
            ),
            key(
                "apply_while_removals_held",
                "Apply creates and updates while removals wait for an operator.",
                "",
                "true",
            ),
        ],
    },
    Section {
        title: "[connections.schedule]",
        about: "When `serve` runs the connection. Without runs it runs only when asked.",
        fields: fields_of::<ScheduleConfig>,
        defaults: defaults_of::<ScheduleConfig>,
        parses: parses::<ScheduleConfig>,
        keys: &[
            key(
                "timezone",
                "The IANA time zone the cron fields, windows and blackout dates are written in.",
                "",
                "\"Europe/London\"",
            ),
            key(
                "jitter_seconds",
                "Each start is delayed by a fixed offset below this, so connections with the same cron do not start together.",
                "",
                "900",
            ),
            key(
                "runs",
                "The cron runs (`[[connections.schedule.runs]]`, below); the connection starts at the earliest.",
                "`[]`",
                "[{ cron = \"0 7-17 * * MON-FRI\" }]",
            ),
            key(
                "blackouts",
                "Date ranges in which runs are skipped or restricted (`[[connections.schedule.blackouts]]`, below).",
                "`[]`",
                "[{ from = \"2026-07-20\", to = \"2026-09-01\", mode = \"additions-only\" }]",
            ),
        ],
    },
    Section {
        title: "[[connections.schedule.runs]]",
        about: "One cron run.",
        fields: fields_of::<RunSpec>,
        defaults: no_defaults,
        parses: parses::<RunSpec>,
        keys: &[
            key(
                "cron",
                "Five fields (minute hour day-of-month month day-of-week), or six with leading seconds, in local time. Required.",
                "required",
                "\"0 7-17 * * MON-FRI\"",
            ),
            key(
                "between",
                "`\"HH:MM-HH:MM\"` local: a daily window (start inclusive, end exclusive; an end before the start runs overnight).",
                NONE,
                "\"07:00-18:00\"",
            ),
        ],
    },
    Section {
        title: "[[connections.schedule.blackouts]]",
        about: "A range of local dates in which runs are skipped or restricted.",
        fields: fields_of::<Blackout>,
        defaults: no_defaults,
        parses: parses::<Blackout>,
        keys: &[
            key(
                "from",
                "The first date (`YYYY-MM-DD`). Required.",
                "required",
                "\"2026-07-20\"",
            ),
            key(
                "to",
                "The last date, included. Required.",
                "required",
                "\"2026-09-01\"",
            ),
            key(
                "mode",
                "`pause`: scheduled runs are skipped. `additions-only`: runs go ahead, but removals wait for an operator. Required.",
                "required",
                "\"additions-only\"",
            ),
            key("label", "A name for operators.", NONE, "\"summer\""),
        ],
    },
    Section {
        title: "[connections.limits]",
        about: "The connector's sandbox limits; each left out keeps the host's limit, and none may be 0.",
        fields: fields_of::<LimitsConfig>,
        defaults: defaults_of::<LimitsConfig>,
        parses: parses::<LimitsConfig>,
        keys: &[
            key(
                "memory_mb",
                "Memory the connector may use.",
                "the host's",
                "256",
            ),
            key(
                "call_timeout_seconds",
                "How long one call into the connector may take.",
                "the host's",
                "60",
            ),
            key(
                "snapshot_timeout_minutes",
                "How long a whole read may take.",
                "the host's",
                "120",
            ),
            key(
                "max_requests",
                "HTTP requests per run.",
                "the host's",
                "20000",
            ),
            key(
                "max_response_mb",
                "The largest HTTP response body.",
                "the host's",
                "64",
            ),
            key(
                "http_timeout_seconds",
                "How long one HTTP request may take.",
                "the host's",
                "30",
            ),
            key(
                "max_batch_records",
                "Records per batch the connector returns.",
                "the host's",
                "5000",
            ),
            key(
                "max_record_kb",
                "The largest single record.",
                "the host's",
                "256",
            ),
        ],
    },
    Section {
        title: "[admin]",
        about: "The admin API and dashboard.",
        fields: fields_of::<AdminConfig>,
        defaults: defaults_of::<AdminConfig>,
        parses: parses::<AdminConfig>,
        keys: &[
            key(
                "listen",
                "Where the API and dashboard listen.",
                "",
                "\"0.0.0.0:8443\"",
            ),
            key(
                "tokens",
                "Who may use them: `[[admin.tokens]]` (below).",
                "`[]`",
                "[{ name = \"ops\", scope = \"admin\", token_env = \"ROSTERSYNC_ADMIN_TOKEN\" }]",
            ),
            key(
                "tls_cert",
                "A PEM certificate chain; with `tls_key`, the server speaks HTTPS only.",
                NONE,
                "\"tls/cert.pem\"",
            ),
            key(
                "tls_key",
                "The certificate's PEM private key.",
                NONE,
                "\"tls/key.pem\"",
            ),
            key(
                "session_idle_minutes",
                "A dashboard session unused this long ends.",
                "",
                "15",
            ),
            key(
                "session_max_hours",
                "Every dashboard session ends this long after sign-in.",
                "",
                "8",
            ),
            key(
                "max_connections",
                "Connections open at once; past it the oldest idle one is closed.",
                "",
                "128",
            ),
            key(
                "header_timeout_seconds",
                "A client must send a request's headers within this; an idle keep-alive connection is closed after it.",
                "",
                "5",
            ),
        ],
    },
    Section {
        title: "[[admin.tokens]]",
        about: "A bearer token for the API and for signing in to the dashboard; at least 32 characters.",
        fields: fields_of::<TokenConfig>,
        defaults: no_defaults,
        parses: parses::<TokenConfig>,
        keys: &[
            key(
                "name",
                "Who the token is, in the audit log. Required.",
                "required",
                "\"ops\"",
            ),
            key(
                "scope",
                "`read`: sees everything, changes nothing. `admin`: also runs syncs, answers holds, acts on accounts. Required.",
                "required",
                "\"admin\"",
            ),
            key(
                "token_env",
                "The environment variable holding the token. Required.",
                "required",
                "\"ROSTERSYNC_ADMIN_TOKEN\"",
            ),
        ],
    },
    Section {
        title: "[[notifications]] kind = \"webhook\"",
        about: "A signed JSON POST (HMAC-SHA256 in `X-Rostersync-Signature`). Write `kind = \"webhook\"` with these keys.",
        fields: fields_of::<WebhookConfig>,
        defaults: no_defaults,
        parses: parses::<WebhookConfig>,
        keys: &[
            key(
                "name",
                "The channel's name. Required.",
                "required",
                "\"ops-chat\"",
            ),
            key(
                "events",
                "Which events: `run.held`, `run.failed`, `run.incomplete`, `connection.disconnected`, `connection.recovered`.",
                "every event",
                "[\"run.held\", \"connection.disconnected\"]",
            ),
            key(
                "url",
                "Where to POST. Required.",
                "required",
                "\"https://hooks.example.org/rostersync\"",
            ),
            key(
                "secret_env",
                "The environment variable holding the HMAC key. Required.",
                "required",
                "\"ROSTERSYNC_WEBHOOK_SECRET\"",
            ),
        ],
    },
    Section {
        title: "[[notifications]] kind = \"email\"",
        about: "A plain-text email through an SMTP relay. Write `kind = \"email\"` with these keys.",
        fields: fields_of::<EmailConfig>,
        defaults: no_defaults,
        parses: parses::<EmailConfig>,
        keys: &[
            key(
                "name",
                "The channel's name. Required.",
                "required",
                "\"it-team\"",
            ),
            key(
                "events",
                "Which events, as for webhooks.",
                "every event",
                "[\"run.held\"]",
            ),
            key(
                "smtp_url",
                "`smtp://` (no TLS), `smtps://` (implicit TLS) or `smtp+starttls://`. Required.",
                "required",
                "\"smtp+starttls://mail.example.org:587\"",
            ),
            key(
                "from",
                "The sender. Required.",
                "required",
                "\"rostersync@example.org\"",
            ),
            key(
                "to",
                "The recipients. Required.",
                "required",
                "[\"it@example.org\"]",
            ),
            key(
                "username_env",
                "The environment variable holding the SMTP user.",
                NONE,
                "\"SMTP_USER\"",
            ),
            key(
                "password_env",
                "The environment variable holding the SMTP password.",
                NONE,
                "\"SMTP_PASSWORD\"",
            ),
            key(
                "allow_plaintext_auth",
                "Lets credentials go over plain `smtp://` (a relay on a trusted network).",
                "`false`",
                "false",
            ),
        ],
    },
    Section {
        title: "[[targets]]",
        about: "Where the roster is provisioned: a target plugin (SCIM, ...) or the host's LDAP / Active Directory target. `rostersync targets preview NAME` shows what it would do.",
        fields: target_fields,
        defaults: target_defaults,
        parses: target_parses,
        keys: &[
            key(
                "name",
                "The target's name. Required; unique.",
                "required",
                "\"apps\"",
            ),
            key(
                "kind",
                "`plugin` (a target plugin from the plugin folder) or `ldap` (the host's own). Required.",
                "required",
                "\"plugin\"",
            ),
            key(
                "plugin",
                "The plugin's file name without `.wasm`, for `kind = \"plugin\"`.",
                NONE,
                "\"scim\"",
            ),
            key(
                "settings",
                "The target's settings by the names it declares. Never secrets.",
                "`{}`",
                "{ base-url = \"https://scim.example.org/scim/v2\" }",
            ),
            key(
                "secrets",
                "Secret settings by the environment variable holding each value.",
                "`{}`",
                "{ bearer-token = \"APPS_SCIM_TOKEN\" }",
            ),
            key(
                "extra_hosts",
                "Hosts the plugin may call beyond its URL settings.",
                "`[]`",
                "[\"login.example.org\"]",
            ),
            key(
                "enabled",
                "`false`: preview only, nothing is sent.",
                "`true`",
                "false",
            ),
            key(
                "rate_per_second",
                "Changes per second at most.",
                "as fast as the target answers",
                "10.0",
            ),
            key("batch_size", "Changes per `apply` call.", "`50`", "25"),
            key(
                "passwords",
                "Initial passwords: `[targets.passwords]` (below).",
                "14 characters, 3 classes",
                "{ length = 16 }",
            ),
            key(
                "password_export",
                "A folder where `serve` writes the initial passwords of the accounts each delivery makes, one new owner-only CSV per delivery; `serve` does not deliver a target that sets passwords without it. Relative to the configuration file.",
                NONE,
                "\"/var/lib/rostersync/passwords\"",
            ),
            key(
                "connections",
                "The connections whose people and groups the target gets; empty means every connection.",
                "",
                "[\"north-primary\"]",
            ),
            key(
                "roles",
                "The roles whose accounts the target gets.",
                "",
                "[\"student\", \"staff\"]",
            ),
            key(
                "group_kinds",
                "The kinds of group the target gets.",
                "",
                "[\"class\"]",
            ),
            key("domain", "`{domain}` in templates.", "", "\"school.org\""),
            key(
                "group_prefix",
                "`{prefix}` in group templates.",
                "",
                "\"sis-\"",
            ),
            key(
                "templates",
                "How accounts and groups are named and placed: `[targets.templates]` (below).",
                "see below",
                "{ username = \"{first}.{last}{n}\" }",
            ),
            key(
                "grace_days",
                "Days a suspended account waits before it is deleted.",
                "",
                "30",
            ),
            key(
                "hold",
                "When a delivery stops for an operator: `[targets.hold]` (below).",
                "see below",
                "{ max_share = 0.05 }",
            ),
        ],
    },
    Section {
        title: "[targets.templates]",
        about: "Templates with the placeholders `{first}`, `{last}`, `{n}`, `{domain}`, `{prefix}`, `{name}` and more (see the README's targets section).",
        fields: fields_of::<Templates>,
        defaults: defaults_of::<Templates>,
        parses: parses::<Templates>,
        keys: &[
            key(
                "username",
                "An account's login name.",
                "",
                "\"{first}.{last}{n}\"",
            ),
            key(
                "email",
                "An account's email address; none leaves it to the target.",
                NONE,
                "\"{first}.{last}{n}@{domain}\"",
            ),
            key(
                "user_container",
                "Where an account is placed (an LDAP OU, say).",
                NONE,
                "\"ou=pupils,dc=school,dc=org\"",
            ),
            key("group_name", "A group's name.", "", "\"{prefix}{name}\""),
            key(
                "group_container",
                "Where a group is placed.",
                NONE,
                "\"ou=groups,dc=school,dc=org\"",
            ),
        ],
    },
    Section {
        title: "[targets.hold]",
        about: "Hold settings of a target: a plan that would suspend or delete more than `max_share` of the target's accounts waits for `rostersync targets approve`, as long as at least `min_count` would go.",
        fields: fields_of::<LifecycleHold>,
        defaults: defaults_of::<LifecycleHold>,
        parses: parses::<LifecycleHold>,
        keys: &[
            key(
                "max_share",
                "The share of the target's accounts a plan may suspend or delete.",
                "",
                "0.05",
            ),
            key(
                "min_count",
                "...as long as at least this many would go.",
                "",
                "3",
            ),
        ],
    },
    Section {
        title: "[targets.passwords]",
        about: "The initial passwords a target issues.",
        fields: fields_of::<PasswordPolicy>,
        defaults: defaults_of::<PasswordPolicy>,
        parses: parses::<PasswordPolicy>,
        keys: &[
            key("length", "Characters.", "", "16"),
            key(
                "classes",
                "Lower case, upper case, digits and symbols, in that order: the first `classes` of them each appear at least once.",
                "",
                "4",
            ),
        ],
    },
];

/// The reference as markdown; `Err` names every key without words and
/// every word without a key, and every section whose examples the parser
/// refuses.
pub fn reference() -> Result<String, Vec<String>> {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `rostersync config reference` from the types the configuration \
         parser reads; a test fails when this file and the parser disagree. Keys are \
         TOML; an unknown key is refused by name. Secrets are never written in the \
         file: a connection or target names, per secret setting, the environment \
         variable that holds it (or a line of `secrets_file`).\n",
    );
    let mut problems = Vec::new();
    for section in SECTIONS {
        let fields = (section.fields)();
        if fields.is_empty() {
            problems.push(format!("{}: the parser named no keys", section.title));
        }
        let documented: BTreeSet<&str> = section.keys.iter().map(|k| k.name).collect();
        for field in &fields {
            if !documented.contains(field.as_str()) {
                problems.push(format!(
                    "{}: key {field} has no words in the reference",
                    section.title
                ));
            }
        }
        for key in section.keys {
            if !fields.iter().any(|f| f == key.name) {
                problems.push(format!(
                    "{}: the reference describes {}, which the parser does not accept",
                    section.title, key.name
                ));
            }
        }
        let example: String = section
            .keys
            .iter()
            .map(|k| format!("{} = {}\n", k.name, k.example))
            .collect();
        if let Err(error) = (section.parses)(&example) {
            problems.push(format!(
                "{}: the examples do not parse: {error}",
                section.title
            ));
        }
        let defaults = (section.defaults)();
        out.push_str(&format!(
            "\n## `{}`\n\n{}\n\n| Key | What it does | Default | Example |\n|---|---|---|---|\n",
            section.title, section.about
        ));
        for field in &fields {
            let Some(key) = section.keys.iter().find(|k| k.name == field) else {
                continue;
            };
            let default = match defaults.iter().find(|(name, _)| name == field) {
                Some((_, value)) => format!("`{value}`"),
                None if key.default.is_empty() => "none".to_string(),
                None => key.default.to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | `{} = {}` |\n",
                key.name,
                cell(key.doc),
                cell(&default),
                key.name,
                cell(key.example)
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_parser_reads_is_described_with_an_example_that_parses() {
        if let Err(problems) = reference() {
            panic!(
                "the configuration reference is out of step:\n{}",
                problems.join("\n")
            );
        }
    }

    #[test]
    fn the_keys_come_from_the_parser() {
        let holds = fields_of::<HoldPolicy>();
        assert!(
            holds.contains(&"accepted_contact_types".to_string()),
            "{holds:?}"
        );
        assert!(fields_of::<ConnectionConfig>().contains(&"extra_hosts".to_string()));
        let defaults = defaults_of::<HoldPolicy>();
        assert!(
            defaults.contains(&("max_contacts_per_student".into(), "5".into())),
            "{defaults:?}"
        );
    }

    #[test]
    fn the_committed_reference_is_the_generated_one() {
        let committed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/configuration.md"
        ))
        .expect("docs/configuration.md is committed");
        let generated = reference().unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md differs from `rostersync config reference`; regenerate it with \
             `rostersync config reference > docs/configuration.md`"
        );
    }
}
