//! Xporter result rows into roster records.
//!
//! Rows are read field by field rather than into fixed structs: Xporter's
//! field lists are only partly documented, so unknown fields are ignored,
//! missing or null ones are absent, ids may come as numbers or text, and a
//! value that cannot be used is reported with the URL, the row's `Id` and
//! the field.

use std::collections::BTreeSet;

use rostersync_connector_sdk::date::iso_date;
use rostersync_connector_sdk::{
    Admission, ContactType, EnrolmentStatus, Group, GroupKind, Person, Relationship, Role,
    SyncError,
};
use serde_json::{Map, Value};

/// One row of a result table.
pub(crate) struct Row<'a> {
    url: &'a str,
    fields: &'a Map<String, Value>,
}

impl<'a> Row<'a> {
    /// A row, or a whole response read the same way.
    pub(crate) fn new(url: &'a str, value: &'a Value) -> Result<Row<'a>, SyncError> {
        match value {
            Value::Object(fields) => Ok(Row { url, fields }),
            other => Err(SyncError::BadResponse(format!(
                "{url}: expected an object, got {}",
                shape(other)
            ))),
        }
    }

    fn field(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    fn bad(&self, name: &str, problem: &str) -> SyncError {
        let row = match self.fields.get("Id") {
            Some(Value::String(id)) => format!("row {id}: "),
            Some(Value::Number(id)) => format!("row {id}: "),
            _ => String::new(),
        };
        SyncError::BadResponse(format!("{}: {row}`{name}` {problem}", self.url))
    }

    pub(crate) fn required(&self, name: &str) -> Result<String, SyncError> {
        self.text(name)?.ok_or_else(|| self.bad(name, "is missing"))
    }

    /// Text, with numbers accepted as text and a blank value as absent.
    pub(crate) fn text(&self, name: &str) -> Result<Option<String>, SyncError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::String(text)) => {
                Ok(Some(text.trim()).filter(|t| !t.is_empty()).map(Into::into))
            }
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(other) => Err(self.bad(name, &format!("is {}, not text", shape(other)))),
        }
    }

    pub(crate) fn date(&self, name: &str) -> Result<Option<String>, SyncError> {
        self.text(name)?
            .map(|text| {
                iso_date(&text).ok_or_else(|| self.bad(name, &format!("is {text:?}, not a date")))
            })
            .transpose()
    }

    /// A yes/no, which Xporter may send as a boolean, 0/1 or text.
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, SyncError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
            Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "yes" | "1" => Ok(Some(true)),
                "false" | "no" | "0" => Ok(Some(false)),
                _ => Err(self.bad(name, &format!("is {text:?}, not true or false"))),
            },
            Some(other) => Err(self.bad(name, &format!("is {}, not true or false", shape(other)))),
        }
    }

    pub(crate) fn number(&self, name: &str) -> Result<Option<u32>, SyncError> {
        self.text(name)?
            .map(|text| {
                text.parse()
                    .map_err(|_| self.bad(name, &format!("is {text:?}, not a whole number")))
            })
            .transpose()
    }

    /// Ids listed as `"1,2,3"` (what `includeMembersIds` gives) or as an array.
    pub(crate) fn ids(&self, name: &str) -> Result<BTreeSet<String>, SyncError> {
        let listed: Vec<String> = match self.field(name) {
            None => Vec::new(),
            Some(Value::String(text)) => text.split(',').map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(id) => Ok(id.clone()),
                    Value::Number(id) => Ok(id.to_string()),
                    other => Err(self.bad(name, &format!("lists {}, not an id", shape(other)))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(self.bad(name, &format!("is {}, not a list of ids", shape(other))));
            }
        };
        Ok(listed
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty())
            .map(Into::into)
            .collect())
    }

    /// An object nested in a field, such as a response's `Pagination`.
    pub(crate) fn object(&self, name: &str) -> Result<Option<Row<'a>>, SyncError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Object(fields)) => Ok(Some(Row {
                url: self.url,
                fields,
            })),
            Some(other) => Err(self.bad(name, &format!("is {}, not an object", shape(other)))),
        }
    }

    /// Rows nested in a field, such as a contact's `Students`.
    pub(crate) fn nested(&self, name: &str) -> Result<Vec<Row<'a>>, SyncError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(fields) => Ok(Row {
                        url: self.url,
                        fields,
                    }),
                    other => Err(self.bad(name, &format!("lists {}, not objects", shape(other)))),
                })
                .collect(),
            Some(other) => Err(self.bad(name, &format!("is {}, not a list", shape(other)))),
        }
    }
}

/// What a JSON value is, for error messages.
fn shape(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A `Students` row (read with `studentStatus=All`).
pub(crate) fn student(row: &Row) -> Result<Person, SyncError> {
    let mut person = Person::new(row.required("Id")?, Role::Student);
    person.mis_id = row.text("ExternalId")?;
    person.first_name = row.text("LegalForename")?.or(row.text("Forename")?);
    person.preferred_first_name = row.text("PreferredForename")?.or(row.text("Forename")?);
    person.middle_names = row.text("MiddleNames")?;
    person.last_name = row.text("LegalSurname")?.or(row.text("Surname")?);
    person.email = row.text("Email")?;
    person.date_of_birth = row.date("DateOfBirth")?;
    person.start_date = row.date("EntryDate")?;
    person.leaving_date = row.date("LeavingDate")?;
    person.enrolment = match row.text("Status")? {
        None => None,
        Some(status) => Some(enrolment(&status).ok_or_else(|| {
            row.bad(
                "Status",
                &format!("is {status:?}, not OnRoll, Leaver or Applicant"),
            )
        })?),
    };
    person.year_group = row.text("YearGroup")?;
    person.registration_group = row.text("RegGroup")?;
    let application_active = row.flag("ApplicationActive")?;
    let admission_date = row.date("AdmissionDate")?;
    let admission_status = row.text("AdmissionStatus")?;
    let intake_group = row.text("IntakeGroup")?;
    if application_active.is_some()
        || admission_date.is_some()
        || admission_status.is_some()
        || intake_group.is_some()
    {
        person.admission = Some(Admission {
            application_active: application_active.unwrap_or(false),
            admission_date,
            admission_status,
            intake_group,
        });
    }
    Ok(person)
}

/// Xporter's `Status`, also in the plural forms its `studentStatus`
/// parameter uses.
fn enrolment(status: &str) -> Option<EnrolmentStatus> {
    match status.to_ascii_lowercase().as_str() {
        "onroll" | "on roll" | "current" => Some(EnrolmentStatus::OnRoll),
        "leaver" | "leavers" | "left" => Some(EnrolmentStatus::Left),
        "applicant" | "applicants" => Some(EnrolmentStatus::Prospective),
        _ => None,
    }
}

/// A `Staff` row.
pub(crate) fn staff(row: &Row) -> Result<Person, SyncError> {
    let mut person = Person::new(row.required("Id")?, Role::Staff);
    person.mis_id = row.text("ExternalId")?;
    person.salutation = row.text("Title")?;
    person.first_name = row.text("Forename")?;
    person.last_name = row.text("Surname")?;
    person.email = row.text("Email")?;
    person.date_of_birth = row.date("DateOfBirth")?;
    Ok(person)
}

/// A `Contacts` row: the contact, and their links to pupils from the
/// nested `Students` entries.
pub(crate) fn contact(row: &Row) -> Result<(Person, Vec<Relationship>), SyncError> {
    let mut person = Person::new(row.required("Id")?, Role::Contact);
    person.mis_id = row.text("ExternalId")?;
    person.salutation = row.text("Title")?;
    person.first_name = row.text("Forename")?;
    person.last_name = row.text("Surname")?;
    person.email = row.text("Email")?;
    let relationships = row
        .nested("Students")?
        .iter()
        .map(|link| {
            let mut relationship = Relationship::new(
                link.required("StudentId")?,
                person.id.clone(),
                contact_type(link.text("ContactType")?.as_deref()),
            );
            relationship.relationship = link.text("Relationship")?;
            relationship.priority = link.number("Priority")?;
            relationship.parental_responsibility =
                link.flag("ParentalResponsibility")?.unwrap_or(false);
            Ok(relationship)
        })
        .collect::<Result<_, SyncError>>()?;
    Ok((person, relationships))
}

fn contact_type(text: Option<&str>) -> ContactType {
    match text.map(str::to_ascii_lowercase).as_deref() {
        Some("primary") => ContactType::Primary,
        Some("secondary") => ContactType::Secondary,
        Some("emergency") => ContactType::Emergency,
        _ => ContactType::Other,
    }
}

/// A `Group` row read with `options=includeMembersIds`: the group, and the
/// ids of its pupils and staff.
pub(crate) fn group(row: &Row) -> Result<(Group, Members), SyncError> {
    let kind = match row.text("Type")?.map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("class") => GroupKind::Class,
        Some("reggroup") => GroupKind::Registration,
        Some("yeargroup") => GroupKind::Year,
        Some("house") => GroupKind::House,
        _ => GroupKind::Other,
    };
    let mut group = Group::new(row.required("Id")?, kind, row.text("Name")?);
    group.code = row.text("Code")?;
    group.subject = row.text("Subject")?;
    group.year_group = row.text("YearGroup")?;
    let members = Members {
        students: row.ids("StudentIds")?,
        staff: row.ids("StaffIds")?,
    };
    Ok((group, members))
}

/// Who is in a group, by Xporter id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Members {
    pub students: BTreeSet<String>,
    pub staff: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://xporter.test/api/v1/School/3804000/Students";

    fn read<T>(value: Value, map: impl FnOnce(&Row) -> Result<T, SyncError>) -> T {
        map(&Row::new(URL, &value).unwrap()).unwrap()
    }

    fn refusal<T: std::fmt::Debug>(
        value: Value,
        map: impl FnOnce(&Row) -> Result<T, SyncError>,
    ) -> String {
        match map(&Row::new(URL, &value).unwrap()) {
            Err(SyncError::BadResponse(message)) => message,
            other => panic!("expected a bad response, got {other:?}"),
        }
    }

    #[test]
    fn an_applicant_keeps_legal_and_preferred_names_and_admission() {
        let person = read(
            json!({"Id": 1042, "ExternalId": "10042", "UPN": "A380200X", "Forename": "Zoë",
                "LegalForename": "Chloé", "PreferredForename": "Zoë", "MiddleNames": null,
                "Surname": "Ó Súilleabháin", "LegalSurname": "Ó Súilleabháin", "Email": "",
                "DateOfBirth": "2015-10-01T00:00:00", "YearGroup": null, "RegGroup": null,
                "EntryDate": "2027-09-01T00:00:00", "LeavingDate": null, "Status": "Applicant",
                "ApplicationActive": true, "AdmissionDate": "2027-09-01T00:00:00",
                "AdmissionStatus": "Accepted", "IntakeGroup": "Year 7 Sept 2027",
                "SomethingNew": {"ignored": true}}),
            student,
        );
        assert_eq!(person.id, "1042");
        assert_eq!(person.mis_id.as_deref(), Some("10042"));
        assert_eq!(person.first_name.as_deref(), Some("Chloé"));
        assert_eq!(person.preferred_first_name.as_deref(), Some("Zoë"));
        assert_eq!(person.last_name.as_deref(), Some("Ó Súilleabháin"));
        assert_eq!(person.email, None, "a blank email is no email");
        assert_eq!(person.date_of_birth.as_deref(), Some("2015-10-01"));
        assert_eq!(person.start_date.as_deref(), Some("2027-09-01"));
        assert_eq!(person.enrolment, Some(EnrolmentStatus::Prospective));
        assert_eq!(person.year_group, None);
        let admission = person.admission.expect("an applicant's admission");
        assert!(admission.application_active);
        assert_eq!(admission.admission_date.as_deref(), Some("2027-09-01"));
        assert_eq!(admission.admission_status.as_deref(), Some("Accepted"));
        assert_eq!(admission.intake_group.as_deref(), Some("Year 7 Sept 2027"));
    }

    #[test]
    fn a_leaver_has_a_leaving_date_and_no_admission() {
        let person = read(
            json!({"Id": "7", "Forename": "Seán", "Surname": "Nguyễn", "Status": "Leaver",
                "EntryDate": "2021-09-01", "LeavingDate": "2025-07-18T00:00:00",
                "YearGroup": "Year 11", "RegGroup": "11A", "ApplicationActive": null}),
            student,
        );
        assert_eq!(
            person.first_name.as_deref(),
            Some("Seán"),
            "falls back to Forename"
        );
        assert_eq!(person.enrolment, Some(EnrolmentStatus::Left));
        assert_eq!(person.leaving_date.as_deref(), Some("2025-07-18"));
        assert_eq!(person.registration_group.as_deref(), Some("11A"));
        assert!(person.admission.is_none());
    }

    #[test]
    fn unusable_values_name_the_url_row_and_field() {
        let message = refusal(
            json!({"Id": 9, "DateOfBirth": "31/02/2012T00:00:00"}),
            student,
        );
        assert_eq!(
            message,
            format!("{URL}: row 9: `DateOfBirth` is \"31/02/2012T00:00:00\", not a date")
        );
        let message = refusal(json!({"Id": 9, "Status": "Expelled"}), student);
        assert!(message.contains("`Status` is \"Expelled\""), "{message}");
        let message = refusal(json!({"Forename": "No id"}), staff);
        assert_eq!(message, format!("{URL}: `Id` is missing"));
        let message = refusal(json!({"Id": 3, "Surname": ["a"]}), staff);
        assert!(
            message.contains("`Surname` is a list, not text"),
            "{message}"
        );
    }

    #[test]
    fn contact_types_follow_xporter_and_default_to_other() {
        let (person, links) = read(
            json!({"Id": 50, "Title": "Mrs", "Forename": "Anaïs", "Surname": "Müller",
            "Students": [
                {"StudentId": 1, "Relationship": "Mother", "Priority": 1, "ParentalResponsibility": true, "ContactType": "Primary"},
                {"StudentId": 2, "Relationship": "Aunt", "Priority": "2", "ParentalResponsibility": 0, "ContactType": "Secondary"},
                {"StudentId": 3, "Priority": 3, "ContactType": "Emergency"},
                {"StudentId": 4, "ContactType": "Neighbour"}
            ]}),
            contact,
        );
        assert_eq!(person.salutation.as_deref(), Some("Mrs"));
        let summary: Vec<_> = links
            .iter()
            .map(|l| {
                (
                    l.student.as_str(),
                    l.contact.as_str(),
                    l.contact_type,
                    l.priority,
                    l.parental_responsibility,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("1", "50", ContactType::Primary, Some(1), true),
                ("2", "50", ContactType::Secondary, Some(2), false),
                ("3", "50", ContactType::Emergency, Some(3), false),
                ("4", "50", ContactType::Other, None, false),
            ]
        );
        assert_eq!(links[0].relationship.as_deref(), Some("Mother"));
    }

    #[test]
    fn groups_carry_kind_and_member_ids_in_either_shape() {
        let (class, members) = read(
            json!({"Id": 300, "Name": null, "Code": "7Ma1", "Type": "Class", "Subject": "Mathematics",
                "YearGroup": "Year 7", "StudentIds": "1, 2,,3", "StaffIds": [40]}),
            group,
        );
        assert_eq!(class.kind, GroupKind::Class);
        assert_eq!(class.name, None, "an unnamed class stays unnamed");
        assert_eq!(class.code.as_deref(), Some("7Ma1"));
        assert_eq!(class.year_group.as_deref(), Some("Year 7"));
        assert_eq!(members.students.iter().collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(members.staff.iter().collect::<Vec<_>>(), ["40"]);
        for (text, kind) in [
            ("RegGroup", GroupKind::Registration),
            ("YearGroup", GroupKind::Year),
            ("House", GroupKind::House),
            ("Club", GroupKind::Other),
        ] {
            let (other, members) = read(json!({"Id": 1, "Type": text, "StudentIds": ""}), group);
            assert_eq!(other.kind, kind, "{text}");
            assert_eq!(members, Members::default());
        }
    }
}
