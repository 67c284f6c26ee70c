//! A complete, small connector to start from: it reads the "Example SIS"
//! JSON API described in this crate's README (bearer token, paginated
//! `people`, a change feed with removals). Replace the endpoint shapes
//! with your provider's and keep the structure.

use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::*;
use serde::Deserialize;

struct ExampleSis;

impl Connector for ExampleSis {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Example SIS",
            env!("CARGO_PKG_VERSION"),
            "Pupils and staff from the Example SIS API.",
        )
        .setting(SettingSpec::base_url(
            "base-url",
            "The API root, e.g. https://api.example-sis.com/v1",
            Some("https://api.example-sis.com/v1"),
        ))
        .setting(SettingSpec::secret("api-token", "The school's API token."))
        .capability(Capability::DeltaReads)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let school: SchoolDto = api.get(&format!("{}/school", api.base))?;
        Ok(SchoolInfo {
            id: school.id,
            name: school.name,
            details: Vec::new(),
        })
    }

    fn snapshot(settings: Settings, mode: Mode) -> Reader {
        Reader {
            settings,
            mode,
            started: None,
            cursor: None,
        }
    }
}

/// The connection to the API: base URL and token.
struct Api {
    base: String,
    token: String,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, SyncError> {
        Ok(Api {
            base: settings.base_url("base-url")?,
            token: settings.require("api-token")?.to_string(),
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, SyncError> {
        Request::get(url).bearer(&self.token).send()?.json()
    }
}

#[derive(Deserialize)]
struct SchoolDto {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct PeoplePage {
    data: Vec<PersonDto>,
    #[serde(default)]
    removed: Vec<String>,
    next: Option<String>,
    pages: Option<u32>,
    cursor: String,
}

#[derive(Deserialize)]
struct PersonDto {
    id: String,
    role: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

impl PersonDto {
    fn into_record(self) -> Result<RosterRecord, SyncError> {
        let role = match self.role.as_str() {
            "student" => Role::Student,
            "staff" => Role::Staff,
            other => {
                return Err(SyncError::BadResponse(format!(
                    "people: person {:?} has role {other:?}, expected student or staff",
                    self.id
                )));
            }
        };
        let mut person = Person::new(self.id, role);
        person.first_name = self.first_name;
        person.last_name = self.last_name;
        person.email = self.email;
        Ok(RosterRecord::Person(person))
    }
}

/// The one endpoint this API pages through.
struct People;

struct Reader {
    settings: Settings,
    mode: Mode,
    started: Option<(Api, Pager<People>)>,
    cursor: Option<String>,
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.started.is_none() {
            let api = Api::new(&self.settings)?;
            let first = match &self.mode {
                Mode::Full => format!("{}/people?page=1", api.base),
                Mode::Delta(since) => format!("{}/people?since={since}", api.base),
            };
            self.started = Some((api, Pager::new([(People, first)])));
        }
        let (api, pager) = self.started.as_mut().expect("started above");
        let cursor = &mut self.cursor;
        pager.next_batch(|People, url| {
            let page: PeoplePage = api.get(url)?;
            *cursor = Some(page.cursor);
            let mut records = page
                .data
                .into_iter()
                .map(PersonDto::into_record)
                .collect::<Result<Vec<_>, _>>()?;
            records.extend(
                page.removed
                    .into_iter()
                    .map(|id| RosterRecord::Removed(Removal::Person(id))),
            );
            Ok(Page {
                records,
                next: page.next,
                total_pages: page.pages,
            })
        })
    }

    fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }
}

export_connector!(ExampleSis);

/// Connector logic is plain Rust: it unit-tests natively with `cargo test`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_its_settings() {
        let info = ExampleSis::describe();
        assert_eq!(info.provider, "Example SIS");
        let token = info
            .settings
            .iter()
            .find(|s| s.name == "api-token")
            .unwrap();
        assert_eq!(token.kind, SettingKind::Secret);
        assert!(info.capabilities.contains(&Capability::DeltaReads));
    }

    #[test]
    fn maps_people_and_refuses_unknown_roles() {
        let dto = |role: &str| PersonDto {
            id: "S1".into(),
            role: role.into(),
            first_name: Some("Zoë".into()),
            last_name: None,
            email: None,
        };
        let RosterRecord::Person(person) = dto("student").into_record().unwrap() else {
            panic!("expected a person");
        };
        assert_eq!(
            (person.role, person.first_name.as_deref()),
            (Role::Student, Some("Zoë"))
        );
        let Err(SyncError::BadResponse(message)) = dto("governor").into_record() else {
            panic!("expected a bad response");
        };
        assert!(message.contains("\"governor\""), "{message}");
    }

    #[test]
    fn a_missing_token_is_a_settings_error() {
        let settings = Settings::from_pairs([("base-url", "https://api.example-sis.com/v1")]);
        let Err(SyncError::BadSettings(message)) = Api::new(&settings) else {
            panic!("expected bad settings");
        };
        assert!(message.contains("`api-token`"));
    }
}
