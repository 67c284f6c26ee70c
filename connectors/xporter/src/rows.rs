//! Xporter result rows into roster records.
//!
//! Field names are those of the recorded real responses in
//! TeamSatchel/xod_client (`spec/fixtures/vcr_cassettes/students.yml`,
//! `staff.yml`, `groups.yml`; a SIMS .net school, 2018):
//!
//! - **Students**: `Id`, `ExternalId` (a GUID), `AdmissionNo` (the MIS
//!   admission number, our `mis_id`), `Forename` (the name the school
//!   uses), `LegalForename`, `MiddleName`, `Surname`, `LegalSurname`,
//!   `WorkEmail`, `DateofBirth` (lower-case `of`), `EntryDate`,
//!   `LeavingDate`, `YearGroup` (`"Year  4"`, SIMS's double space, read
//!   with the spaces collapsed), `RegGroup` and `StudentStatus`
//!   (`OnRoll`). The recording shows no leaver or applicant, so the other
//!   `StudentStatus` values read here (`Leaver`, `Applicant`) and the
//!   applicant's `ApplicationActive`, `AdmissionDate`, `AdmissionStatus`
//!   and `IntakeGroup` are not confirmed by a public source.
//! - **Staff**: `Id`, `ExternalId`, `StaffCode` (our `mis_id`), `Title`,
//!   `Forename`, `LegalForename`, `MiddleName`, `Surname`, `LegalSurname`,
//!   `WorkEmail`, `DateOfBirth` (upper-case `Of`, unlike pupils),
//!   `EmploymentStart` and `EmploymentEnd`.
//! - **Group**: `Id`, `Type` (`YearGrp`, `RegGrp`, `HouseGrp`,
//!   `TeachingGrp`: the types TeamSatchel/xod_client's
//!   `concerns/data_endpoints.rb` lists), `Code`, `Name` and
//!   `PrimaryStaffId`; with `options=includeMembersIds`, `StudentIds` as
//!   `"id1,id2"` (genplus's Open edX integration reads it so). A
//!   `StaffIds` list beside it is read where present but no public source
//!   shows one; no recording shows a group's subject or year either.
//! - **Contacts**: no public recording shows a contact row. The fields
//!   read (`Title`, `Forename`, `Surname`, `Email`, and per pupil in
//!   `Students`: `StudentId`, `Relationship`, `Priority`,
//!   `ParentalResponsibility`, `ContactType`) are a likely shape, not a
//!   confirmed one.
//!
//! Rows are read field by field rather than into fixed structs: unknown
//! fields are ignored, missing or null ones are absent, ids may come as
//! numbers or text, and a value that cannot be used is reported with the
//! URL, the row's `Id` and the field.

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

    /// The ids of a `{Table}_deleted` list: rows carrying an `Id`, as
    /// Xporter sends them, or bare ids.
    pub(crate) fn deleted(&self, name: &str) -> Result<BTreeSet<String>, SyncError> {
        match self.field(name) {
            Some(Value::Array(items)) if items.iter().any(Value::is_object) => self
                .nested(name)?
                .iter()
                .map(|row| row.required("Id"))
                .collect(),
            _ => self.ids(name),
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
    person.mis_id = row.text("AdmissionNo")?;
    names(row, &mut person)?;
    person.date_of_birth = row.date("DateofBirth")?;
    person.start_date = row.date("EntryDate")?;
    person.leaving_date = row.date("LeavingDate")?;
    person.enrolment = match row.text("StudentStatus")? {
        None => None,
        Some(status) => Some(enrolment(&status).ok_or_else(|| {
            row.bad(
                "StudentStatus",
                &format!("is {status:?}, not OnRoll, Leaver or Applicant"),
            )
        })?),
    };
    person.year_group = row
        .text("YearGroup")?
        .map(|year| year.split_whitespace().collect::<Vec<_>>().join(" "));
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

/// The names a pupil or staff row carries alike: the legal forename as
/// first name (else `Forename`), `Forename` as the preferred one, and
/// `WorkEmail`.
fn names(row: &Row, person: &mut Person) -> Result<(), SyncError> {
    person.first_name = row.text("LegalForename")?.or(row.text("Forename")?);
    person.preferred_first_name = row.text("Forename")?;
    person.middle_names = row.text("MiddleName")?;
    person.last_name = row.text("LegalSurname")?.or(row.text("Surname")?);
    person.email = row.text("WorkEmail")?;
    Ok(())
}

/// Xporter's `StudentStatus`, also in the plural forms its `studentStatus`
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
    person.mis_id = row.text("StaffCode")?;
    person.salutation = row.text("Title")?;
    names(row, &mut person)?;
    person.date_of_birth = row.date("DateOfBirth")?;
    person.start_date = row.date("EmploymentStart")?;
    person.leaving_date = row.date("EmploymentEnd")?;
    Ok(person)
}

/// A `Contacts` row: the contact, and their links to pupils from the
/// nested `Students` entries.
pub(crate) fn contact(row: &Row) -> Result<(Person, Vec<Relationship>), SyncError> {
    let mut person = Person::new(row.required("Id")?, Role::Contact);
    person.mis_id = row.text("ExternalId")?;
    person.salutation = row.text("Title")?;
    person.first_name = row.text("Forename")?;
    person.preferred_first_name = row.text("Forename")?;
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
    let kind = match row.text("Type")?.as_deref() {
        Some("TeachingGrp") => GroupKind::Class,
        Some("RegGrp") => GroupKind::Registration,
        Some("YearGrp") => GroupKind::Year,
        Some("HouseGrp") => GroupKind::House,
        _ => GroupKind::Other,
    };
    let mut group = Group::new(row.required("Id")?, kind, row.text("Name")?);
    group.code = row.text("Code")?;
    let mut staff = row.ids("StaffIds")?;
    staff.extend(row.text("PrimaryStaffId")?);
    let members = Members {
        students: row.ids("StudentIds")?,
        staff,
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

    /// The first pupil of TeamSatchel/xod_client's recorded `students.yml`
    /// (MIT), abridged to the fields read and a few ignored ones.
    fn recorded_pupil() -> Value {
        json!({"Id":"3116","XID":"xUYWRO2","ExternalId":"05a289a1-d579-4285-b050-894f5e11e04a",
            "IdaasId":"PL-3116","Forename":"Albus","Surname":"Dumbledore","DisplayName":"Albus Dumbledore",
            "AdmissionNo":"001275","Gender":"M","RegGroupId":"188","RegGroup":"4ES","YearGroupId":"28",
            "YearGroup":"Year  4","HouseGroupId":null,"HouseGroup":null,"WorkEmail":null,"IdaasEmail":null,
            "DateofBirth":"2009-01-12","UniqueLearnerNumber":null,"MiddleName":null,"EnrolmentStatus":"C",
            "LegalForename":"Albus","LegalSurname":"Dumbledore","EntryDate":"2012-09-01","LeavingDate":null,
            "StudentStatus":"OnRoll","LastUpdated":"2018-06-12T02:07:21.03"})
    }

    #[test]
    fn a_recorded_pupil_maps_field_by_field() {
        let person = read(recorded_pupil(), student);
        assert_eq!(person.id, "3116");
        assert_eq!(person.role, Role::Student);
        assert_eq!(person.mis_id.as_deref(), Some("001275"));
        assert_eq!(person.first_name.as_deref(), Some("Albus"));
        assert_eq!(person.preferred_first_name.as_deref(), Some("Albus"));
        assert_eq!(person.last_name.as_deref(), Some("Dumbledore"));
        assert_eq!(person.middle_names, None);
        assert_eq!(person.email, None);
        assert_eq!(person.date_of_birth.as_deref(), Some("2009-01-12"));
        assert_eq!(person.start_date.as_deref(), Some("2012-09-01"));
        assert_eq!(person.leaving_date, None);
        assert_eq!(person.enrolment, Some(EnrolmentStatus::OnRoll));
        assert_eq!(person.year_group.as_deref(), Some("Year 4"));
        assert_eq!(person.registration_group.as_deref(), Some("4ES"));
        assert!(person.admission.is_none());
    }

    #[test]
    fn an_applicant_keeps_legal_and_preferred_names_and_admission() {
        let mut row = recorded_pupil();
        for (field, value) in [
            ("Forename", json!("Zoë")),
            ("LegalForename", json!("Chloé")),
            ("WorkEmail", json!("")),
            ("StudentStatus", json!("Applicant")),
            ("YearGroup", json!(null)),
            ("ApplicationActive", json!(true)),
            ("AdmissionDate", json!("2027-09-01T00:00:00")),
            ("AdmissionStatus", json!("Accepted")),
            ("IntakeGroup", json!("Year 7 Sept 2027")),
        ] {
            row[field] = value;
        }
        let person = read(row, student);
        assert_eq!(person.first_name.as_deref(), Some("Chloé"));
        assert_eq!(person.preferred_first_name.as_deref(), Some("Zoë"));
        assert_eq!(person.email, None, "a blank email is no email");
        assert_eq!(person.enrolment, Some(EnrolmentStatus::Prospective));
        assert_eq!(person.year_group, None);
        let admission = person.admission.expect("an applicant's admission");
        assert!(admission.application_active);
        assert_eq!(admission.admission_date.as_deref(), Some("2027-09-01"));
        assert_eq!(admission.admission_status.as_deref(), Some("Accepted"));
        assert_eq!(admission.intake_group.as_deref(), Some("Year 7 Sept 2027"));
    }

    #[test]
    fn a_recorded_staff_member_maps_field_by_field() {
        // The first row of xod_client's recorded `staff.yml`, abridged.
        let person = read(
            json!({"Id":"2","XID":"xW9QS9S","IdaasId":"PWT-2","ExternalId":"61c8018c-361d-48f6-98f0-adef6fa9bffe",
                "Title":"Mrs","Suffix":null,"StaffCode":"RL","StaffStatus":"Current","Forename":"Rebecca",
                "Surname":"Lorrin","DisplayName":"Mrs R Lorrin","WorkEmail":null,"Gender":"F","MiddleName":null,
                "LegalForename":"Rebecca","LegalSurname":"Lorrin","DateOfBirth":"1956-10-16",
                "TeacherNumber":"88/86710","EmploymentStart":"1988-04-01","EmploymentEnd":null,
                "IsTeacher":0,"IsSupport":1,"RegGroup":"N1 PM,AM"}),
            staff,
        );
        assert_eq!(person.id, "2");
        assert_eq!(person.role, Role::Staff);
        assert_eq!(person.mis_id.as_deref(), Some("RL"));
        assert_eq!(person.salutation.as_deref(), Some("Mrs"));
        assert_eq!(person.first_name.as_deref(), Some("Rebecca"));
        assert_eq!(person.last_name.as_deref(), Some("Lorrin"));
        assert_eq!(person.email, None);
        assert_eq!(person.date_of_birth.as_deref(), Some("1956-10-16"));
        assert_eq!(person.start_date.as_deref(), Some("1988-04-01"));
        assert_eq!(person.leaving_date, None);
    }

    #[test]
    fn unusable_values_name_the_url_row_and_field() {
        let message = refusal(
            json!({"Id": 9, "DateofBirth": "31/02/2012T00:00:00"}),
            student,
        );
        assert_eq!(
            message,
            format!("{URL}: row 9: `DateofBirth` is \"31/02/2012T00:00:00\", not a date")
        );
        let message = refusal(json!({"Id": 9, "StudentStatus": "Expelled"}), student);
        assert!(
            message.contains("`StudentStatus` is \"Expelled\""),
            "{message}"
        );
        let message = refusal(json!({"Forename": "No id"}), staff);
        assert_eq!(message, format!("{URL}: `Id` is missing"));
        let message = refusal(json!({"Id": 3, "Surname": ["a"]}), staff);
        assert!(
            message.contains("`Surname` is a list, not text"),
            "{message}"
        );
    }

    #[test]
    fn deleted_rows_are_objects_with_an_id_or_bare_ids() {
        let response =
            json!({"Students_deleted": [{"Id":"3221"},{"Id":"3920"}], "Group_deleted": [31, "30"]});
        let row = Row::new(URL, &response).unwrap();
        assert_eq!(
            row.deleted("Students_deleted")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["3221", "3920"]
        );
        assert_eq!(
            row.deleted("Group_deleted")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["30", "31"]
        );
        assert!(row.deleted("Staff_deleted").unwrap().is_empty());
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
        // The first row of xod_client's recorded `groups.yml`.
        let (year, members) = read(
            json!({"Id":"31","XID":"xL8TTH2","ExternalId":"013e06d4-aa20-4b70-841d-e72767a7f744",
                "IdaasId":"GY-31","Type":"YearGrp","Code":"1","Name":"Year  1","PrimaryStaffId":null,
                "Staff":null,"NumStudents":59}),
            group,
        );
        assert_eq!(year.id, "31");
        assert_eq!(year.kind, GroupKind::Year);
        assert_eq!(year.name.as_deref(), Some("Year  1"));
        assert_eq!(year.code.as_deref(), Some("1"));
        assert_eq!(members, Members::default());

        let (class, members) = read(
            json!({"Id": 300, "Name": null, "Code": "7Ma1", "Type": "TeachingGrp",
                "PrimaryStaffId": "41", "StudentIds": "1, 2,,3", "StaffIds": [40]}),
            group,
        );
        assert_eq!(class.kind, GroupKind::Class);
        assert_eq!(class.name, None, "an unnamed class stays unnamed");
        assert_eq!(class.code.as_deref(), Some("7Ma1"));
        assert_eq!(members.students.iter().collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(members.staff.iter().collect::<Vec<_>>(), ["40", "41"]);
        for (text, kind) in [
            ("RegGrp", GroupKind::Registration),
            ("HouseGrp", GroupKind::House),
            ("Club", GroupKind::Other),
        ] {
            let (other, members) = read(json!({"Id": 1, "Type": text, "StudentIds": ""}), group);
            assert_eq!(other.kind, kind, "{text}");
            assert_eq!(members, Members::default());
        }
    }
}
