//! Checks each connection against what its connector says it needs: a
//! connector that is not in the plugin folder, setting names the connector
//! does not have (with the closest one it does), required settings left
//! out, and secrets written in plain `settings`. Pure: the caller loads the
//! plugins and hands over their descriptions.

use rostersync_model::{ConnectorInfo, SettingKind};
use rostersync_sync::ConnectionConfig;
use serde::Serialize;

/// One thing wrong with a connection, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub connection: String,
    /// The key at fault (`connector`, `settings.school_id`, `secrets.token`).
    pub field: String,
    pub message: String,
}

/// Every problem of `connection`, given its connector's description, or
/// `None` and the names of the connectors the plugin folder does have.
pub fn connection_problems(
    connection: &ConnectionConfig,
    connector: Option<&ConnectorInfo>,
    available: &[&str],
) -> Vec<Problem> {
    let problem = |field: String, message: String| Problem {
        connection: connection.id.clone(),
        field,
        message: format!("connection {:?}: {message}", connection.id),
    };
    let Some(info) = connector else {
        let hint = match closest(&connection.connector, available.iter().copied()) {
            Some(name) => format!("; did you mean {name:?}?"),
            None if available.is_empty() => "; it has none".to_string(),
            None => format!("; it has: {}", available.join(", ")),
        };
        return vec![problem(
            "connector".into(),
            format!(
                "there is no connector {:?} in the plugin folder{hint}",
                connection.connector
            ),
        )];
    };
    let known = info.settings.iter().map(|spec| spec.name.as_str());
    let mut problems = Vec::new();
    let given_in_file = connection
        .settings
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !connection.secrets.contains_key(*name))
        .map(|name| ("settings", name));
    let given_as_secret = connection
        .secrets
        .keys()
        .map(|name| ("secrets", name.as_str()));
    for (table, name) in given_in_file.chain(given_as_secret) {
        let Some(spec) = info.settings.iter().find(|spec| spec.name == name) else {
            let hint = match closest(name, known.clone()) {
                Some(real) => format!("did you mean {real:?}?"),
                None => format!(
                    "its settings are: {}",
                    known.clone().collect::<Vec<_>>().join(", ")
                ),
            };
            problems.push(problem(
                format!("{table}.{name}"),
                format!(
                    "{name:?} is not a setting of connector {}; {hint}",
                    connection.connector
                ),
            ));
            continue;
        };
        if table == "settings" && spec.kind == SettingKind::Secret {
            problems.push(problem(
                format!("settings.{name}"),
                format!(
                    "{name:?} is a secret: name the environment variable that holds it under secrets (secrets = {{ {name} = \"VARIABLE\" }}), not its value under settings"
                ),
            ));
        }
    }
    for spec in &info.settings {
        let given = connection.settings.get(&spec.name).is_some()
            || connection.secrets.contains_key(&spec.name);
        if spec.required && spec.default_value.is_none() && !given {
            let table = if spec.kind == SettingKind::Secret {
                "secrets"
            } else {
                "settings"
            };
            problems.push(problem(
                format!("{table}.{}", spec.name),
                format!(
                    "connector {} needs the setting {:?} ({}), and it has no default",
                    connection.connector,
                    spec.name,
                    spec.description.trim_end_matches('.')
                ),
            ));
        }
    }
    problems
}

/// The name in `names` closest to `typed`, if one is close enough to be a
/// likely typo (case, `_` for `-`, or a couple of letters off).
fn closest<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('_', "-");
    let typed = norm(typed);
    names
        .map(|name| (edit_distance(&typed, &norm(name)), name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(2))
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use rostersync_model::{SettingSpec, Settings};

    use super::*;

    fn wonde() -> ConnectorInfo {
        let spec = |name: &str, kind, required, default: Option<&str>| SettingSpec {
            name: name.into(),
            description: format!("The {name}."),
            kind,
            required,
            default_value: default.map(Into::into),
        };
        ConnectorInfo {
            provider: "Wonde".into(),
            version: "1.0.0".into(),
            description: String::new(),
            settings: vec![
                spec(
                    "base-url",
                    SettingKind::BaseUrl,
                    true,
                    Some("https://api.wonde.com/v1.0"),
                ),
                spec("school-id", SettingKind::Text, true, None),
                spec("api-token", SettingKind::Secret, true, None),
            ],
            capabilities: vec![],
        }
    }

    fn connection(settings: Settings, secrets: &[&str]) -> ConnectionConfig {
        let text = format!(
            "id = \"north\"\nconnector = \"wonde\"\nsecrets = {{ {} }}",
            secrets
                .iter()
                .map(|s| format!("{s} = \"X\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut connection: ConnectionConfig = toml::from_str(&text).unwrap();
        connection.settings = settings;
        connection
    }

    fn messages(problems: Vec<Problem>) -> Vec<String> {
        problems
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    }

    #[test]
    fn a_good_connection_has_no_problems() {
        let good = connection(
            Settings::new()
                .with("school-id", "A1")
                .with("api-token", "t"),
            &["api-token"],
        );
        assert_eq!(connection_problems(&good, Some(&wonde()), &[]), vec![]);
    }

    #[test]
    fn every_problem_is_reported_in_one_pass_with_the_likely_name() {
        let bad = connection(
            Settings::new()
                .with("school_id", "A1")
                .with("api-token", "in-the-file"),
            &[],
        );
        assert_eq!(
            messages(connection_problems(&bad, Some(&wonde()), &[])),
            [
                "settings.api-token: connection \"north\": \"api-token\" is a secret: name the environment variable that holds it under secrets (secrets = { api-token = \"VARIABLE\" }), not its value under settings",
                "settings.school_id: connection \"north\": \"school_id\" is not a setting of connector wonde; did you mean \"school-id\"?",
                "settings.school-id: connection \"north\": connector wonde needs the setting \"school-id\" (The school-id), and it has no default",
            ]
        );
    }

    #[test]
    fn a_missing_connector_names_the_closest_plugin() {
        let mut typo = connection(Settings::new(), &[]);
        typo.connector = "wondee".into();
        assert_eq!(
            messages(connection_problems(&typo, None, &["clever", "wonde"])),
            [
                "connector: connection \"north\": there is no connector \"wondee\" in the plugin folder; did you mean \"wonde\"?"
            ]
        );
        typo.connector = "mis".into();
        assert_eq!(
            messages(connection_problems(&typo, None, &["clever", "wonde"])),
            [
                "connector: connection \"north\": there is no connector \"mis\" in the plugin folder; it has: clever, wonde"
            ]
        );
    }
}
