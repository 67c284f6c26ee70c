//! Every rule that can leave a record out of a run, by the name operators
//! know it by (the connection setting that governs it, where there is
//! one), with what the people it leaves out have in common and how a
//! school fixes the record at the source. Issues carry their rule, so the
//! history, the standing issues and an incomplete run's summary all say
//! which policy raised them.

use serde::{Deserialize, Serialize};

/// The rule behind an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Every person has a first and a last name (always on).
    RequiredNames,
    /// `validation.require_start_date`.
    RequireStartDate,
    /// `validation.require_salutation`.
    RequireSalutation,
    /// `validation.require_email_for`.
    RequireEmailFor,
    /// `validation.require_year_group`.
    RequireYearGroup,
    /// `validation.require_registration_group`.
    RequireRegistrationGroup,
    /// Every pupil has an enrolment status (always on).
    EnrolmentStatus,
    /// `validation.require_admission_details`.
    RequireAdmissionDetails,
    /// Applicants: an active application, no past admission date, an
    /// allowed status (`validation.allowed_admission_statuses`) and an
    /// intake group.
    AllowedAdmissionStatuses,
    /// Leavers have a leaving date (`validation.leaver_window_months`).
    LeaverWindowMonths,
    /// Every class has a name (always on).
    ClassName,
    /// Link mode found no single account of the person's role
    /// (`provisioning.match_on`), or create mode met a clash.
    Matching,
    /// A membership or relationship names someone or something that is
    /// not stored (always on).
    ReferentialIntegrity,
    /// An operator answered "Don't create" to a hold about this contact.
    Declined,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Self::RequiredNames,
        Self::RequireStartDate,
        Self::RequireSalutation,
        Self::RequireEmailFor,
        Self::RequireYearGroup,
        Self::RequireRegistrationGroup,
        Self::EnrolmentStatus,
        Self::RequireAdmissionDetails,
        Self::AllowedAdmissionStatuses,
        Self::LeaverWindowMonths,
        Self::ClassName,
        Self::Matching,
        Self::ReferentialIntegrity,
        Self::Declined,
    ];

    /// The name the history, the CLI and the README use.
    pub fn name(self) -> &'static str {
        match self {
            Self::RequiredNames => "required_names",
            Self::RequireStartDate => "require_start_date",
            Self::RequireSalutation => "require_salutation",
            Self::RequireEmailFor => "require_email_for",
            Self::RequireYearGroup => "require_year_group",
            Self::RequireRegistrationGroup => "require_registration_group",
            Self::EnrolmentStatus => "enrolment_status",
            Self::RequireAdmissionDetails => "require_admission_details",
            Self::AllowedAdmissionStatuses => "allowed_admission_statuses",
            Self::LeaverWindowMonths => "leaver_window_months",
            Self::ClassName => "class_name",
            Self::Matching => "matching",
            Self::ReferentialIntegrity => "referential_integrity",
            Self::Declined => "declined",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// What the people this rule left out have in common, after a count:
    /// "333 have no start date".
    pub fn left_out_as(self) -> &'static str {
        match self {
            Self::RequiredNames => "have no first or last name",
            Self::RequireStartDate => "have no start date",
            Self::RequireSalutation => "have no salutation",
            Self::RequireEmailFor => "have no email",
            Self::RequireYearGroup => "are in no year group",
            Self::RequireRegistrationGroup => "are in no usable registration group",
            Self::EnrolmentStatus => "have no enrolment status",
            Self::RequireAdmissionDetails => "are applicants without admission details",
            Self::AllowedAdmissionStatuses => "are applicants the connection does not sync",
            Self::LeaverWindowMonths => "are leavers without a leaving date",
            Self::ClassName => "are classes without a name",
            Self::Matching => "match no single account",
            Self::ReferentialIntegrity => "name someone who is not stored",
            Self::Declined => "are contacts an operator declined",
        }
    }

    /// How a school fixes a record this rule left out.
    pub fn fix(self) -> &'static str {
        match self {
            Self::RequiredNames => "Enter the first and last name in the MIS.",
            Self::RequireStartDate => {
                "Enter the start date in the MIS, or set validation.require_start_date = false if the provider has none."
            }
            Self::RequireSalutation => {
                "Enter the title (Mr, Ms, Dr, ...) in the MIS, or set validation.require_salutation = false."
            }
            Self::RequireEmailFor => {
                "Enter the email address in the MIS, or take the role out of validation.require_email_for."
            }
            Self::RequireYearGroup => {
                "Put the pupil in a year group, or in a registration group that has a year, in the MIS."
            }
            Self::RequireRegistrationGroup => {
                "Put the pupil in an active registration group in the MIS, or set validation.require_registration_group = false."
            }
            Self::EnrolmentStatus => {
                "Record the pupil's enrolment status (on roll, applicant, leaver) in the MIS."
            }
            Self::RequireAdmissionDetails => {
                "Record the application in the MIS, or set validation.require_admission_details = false if the provider sends none."
            }
            Self::AllowedAdmissionStatuses => {
                "Complete the application in the MIS (active, future admission date, intake group), or add its status to validation.allowed_admission_statuses."
            }
            Self::LeaverWindowMonths => "Enter the leaving date in the MIS.",
            Self::ClassName => "Name the class in the MIS.",
            Self::Matching => {
                "Give the account and the person the same MIS id, email or username, or resolve the clash named in the message."
            }
            Self::ReferentialIntegrity => {
                "Fix the person or group it names (see their own issue), or remove the membership or relationship in the MIS."
            }
            Self::Declined => {
                "Nothing to fix: an operator chose not to create it. To be asked again now, run `rostersync holds reconsider HOLD` with the hold that declined it."
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.name()), Some(rule));
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::json!(rule.name())
            );
        }
    }
}
