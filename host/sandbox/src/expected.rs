//! The roster records a faithful connector should produce from each
//! provider's view of a school, in the host's model types, so connector
//! tests can compare counts per entity kind and sample records field by
//! field. Free `attributes` are left empty: connectors may add what they
//! like there, and tests should not compare them.
//!
//! Mapping decisions, per provider:
//!
//! **Wonde.** Ids are Wonde ids (`A…`); `mis_id` is Wonde's `mis_id`.
//! Students come from `students` (on roll), `students-pre-admission`
//! (prospective, with `education_details.data.application` as the
//! admission) and `students/leavers` (left, with `leaving_date`).
//! `first_name` is `legal_forename`, `preferred_first_name` is `forename`;
//! email is `contact_details.data.emails.email`; `start_date` is
//! `education_details.data.admission_date`; `year_group` and
//! `registration_group` are the names of the `year` and `registration`
//! includes. Staff are `employees` (`title` → salutation); contacts are the
//! `contacts` endpoint. `classes` become `Class` groups (subject name from
//! `include=subject`, year as "Year N"); `groups` of type YEAR,
//! REGISTRATION and HOUSE become `Year`, `Registration` and `House`.
//! Memberships are `students` (Student) and `employees` (Teacher) of each
//! class and group. Relationships come from `students?include=contacts`:
//! `relationship.relationship`, `relationship.priority`, parental
//! responsibility as given, and contact type by priority (1 primary, 2
//! secondary, 3 and later emergency).
//!
//! **Clever.** Ids are Clever user and section ids. Only pupils on roll are
//! in Clever. `mis_id` is `sis_id`; `username` is
//! `credentials.district_username`; names are `name.first/middle/last` and
//! there is no preferred name in v3.0; contacts carry their full name in
//! `last_name` only; a teacher's `mis_id` is `teacher_number`, a staff
//! member's `staff_id`. `year_group` is the Clever `grade` (UK year − 1);
//! `registration_group` is the name of the pupil's `homeroom/advisory`
//! section;
//! `start_date` is the enrollment's `start_date`. Sections with subject
//! `homeroom/advisory` are `Registration` groups, the others `Class`
//! groups with Clever's subject enum as the subject. Memberships are
//! `students[]` and `teachers[]`. Relationships are
//! `roles.contact.student_relationships`: `relationship` is Clever's enum
//! (Parent, Grandparent, Aunt/Uncle, Other), `type` Primary, Secondary or
//! Emergency maps to the contact type, no priority, and parental
//! responsibility is `relationship == Parent`.
//!
//! **Arbor.** Ids are Arbor's numeric ids as strings (the last segment of
//! a record's `href`). Only pupils on roll are served. Names and date of
//! birth come from each Student's, Staff's or Guardian's `Person`
//! (`legalFirstName`, `preferredFirstName`, `legalMiddleNames`,
//! `legalLastName`, `dateOfBirth`) and the salutation from its `Title`;
//! `mis_id` is `studentNumber`, `staffNumber` or the guardian's
//! `legacySystemId`; email is the `EmailAddress` the person owns;
//! `start_date` is the pupil's latest `SchoolEnrolment.startDate`;
//! `year_group` is the `academicLevelName` of the pupil's
//! `AcademicLevelMembership`; `registration_group` is the name of the
//! form of the pupil's `RegistrationFormMembership`. `RegistrationForm`s
//! are `Registration` groups, without a year (Arbor's model has none), and
//! `AcademicUnit`s `Class` groups with their `Subject`'s `subjectName` and
//! their `AcademicLevel`'s name; Arbor has no year or house groups here.
//! Memberships are `RegistrationFormMembership`s and
//! `AcademicUnitEnrolment`s (Student) and `AcademicUnitLead`s (Teacher).
//! Relationships are `StudentGuardianRelationship`s: the
//! `GuardianRelationshipType`'s `relationshipName`,
//! `emergencyContactPriority` as the priority and the contact type (1
//! primary, 2 secondary, later emergency), `isLegalGuardian` as parental
//! responsibility. Sources: `providers::arbor`.
//!
//! **Xporter.** Ids are Xporter `Id`s; pupils are read with
//! `studentStatus=All`. `mis_id` is `AdmissionNo` for pupils, `StaffCode`
//! for staff and `ExternalId` for contacts; `first_name` is
//! `LegalForename`, `preferred_first_name` `Forename` (staff and contacts
//! too); email is `WorkEmail`; the year is `YearGroup` with SIMS's double
//! space collapsed; enrolment is `StudentStatus` (OnRoll, Leaver,
//! Applicant) and the admission comes from `ApplicationActive`,
//! `AdmissionDate`, `AdmissionStatus`, `IntakeGroup`. Groups are every
//! `Group` row, kind by `Type` (TeachingGrp, RegGrp, YearGrp, HouseGrp),
//! without subject or year (no recorded row has them); memberships are
//! `StudentIds` and `StaffIds`/`PrimaryStaffId` (Teacher). Relationships
//! are each contact's `Students` entries with their `ContactType`,
//! `Relationship`, `Priority` and `ParentalResponsibility`.
//!
//! **Scholarpack.** Ids are Scholarpack `id`s as strings. `mis_id` is
//! `admission_number` for pupils and `staff_code` for staff; the preferred
//! name is `preferred_forename` when set; `registration_group` is `class`;
//! enrolment is `enrolment_status` (current, leaver, applicant; no
//! admission details). Groups by `type` (teaching → Class, class →
//! Registration, year, house); memberships are `student_ids` and
//! `staff_ids`; relationships are each pupil's `contacts` with contact type
//! by priority as for Wonde.
//!
//! **OneRoster CSV.** Ids are `sourcedId`s. Only pupils on roll are
//! exported. `mis_id` is `identifier` (UPN for pupils); `username` is
//! `username` when set; `year_group` is `grades` ("06" for UK year 7).
//! `homeroom` classes are `Registration` groups, `scheduled` ones `Class`
//! groups (an empty `title` is a missing name). Memberships are
//! enrollments. Relationships come from a pupil's `agentSourcedIds`: the
//! contact's role (parent, guardian, relative) is the relationship, the
//! position in the list (from 1) the priority, the contact type is
//! `Other` (OneRoster 1.1 has none) and parental responsibility is role
//! parent or guardian.

use std::collections::BTreeMap;

use rostersync_model::{
    Admission, ContactType, EnrolmentStatus, EntityKind, Group, GroupKind, MemberRole, Membership,
    Person, Record, Relationship, Role,
};

use crate::World;
use crate::generator::{self as g, School};
use crate::oneroster;
use crate::providers::{arbor, clever, wonde};

/// How many records of each kind.
pub fn counts(records: &[Record]) -> BTreeMap<EntityKind, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        let kind = match r {
            Record::Person(_) => EntityKind::Person,
            Record::Group(_) => EntityKind::Group,
            Record::Membership(_) => EntityKind::Membership,
            Record::Relationship(_) => EntityKind::Relationship,
            Record::Removed(_) => continue,
        };
        *out.entry(kind).or_insert(0) += 1;
    }
    out
}

// The building blocks below hold what providers map alike; a provider that
// maps a field its own way replaces it with struct update syntax, so each
// difference is stated where the provider's records are built.

fn year_name(y: u8) -> String {
    format!("Year {y}")
}

fn uid_id(uid: u64) -> String {
    uid.to_string()
}

/// A pupil's MIS id, legal names, email and date of birth, which every
/// provider maps alike but for OneRoster's `mis_id` (the UPN).
fn pupil(id: String, s: &g::Student) -> Person {
    let mut p = Person::new(id, Role::Student);
    p.mis_id = Some(s.mis_id.clone());
    p.first_name = Some(s.forename.clone());
    p.middle_names.clone_from(&s.middle_names);
    p.last_name = Some(s.surname.clone());
    p.email.clone_from(&s.email);
    p.date_of_birth = Some(s.date_of_birth);
    p
}

/// A staff member's MIS id, names and email, which every provider maps alike.
fn staff_member(id: String, s: &g::Staff) -> Person {
    let mut p = Person::new(id, Role::Staff);
    p.mis_id = Some(s.mis_id.clone());
    p.first_name = Some(s.forename.clone());
    p.last_name = Some(s.surname.clone());
    p.email.clone_from(&s.email);
    p
}

/// A contact's MIS id, names and email, as every provider but Clever (which
/// has the full name in `last_name` only) maps them.
fn contact(id: String, c: &g::Contact) -> Person {
    let mut p = Person::new(id, Role::Contact);
    p.mis_id = Some(c.mis_id.clone());
    p.first_name = Some(c.forename.clone());
    p.last_name = Some(c.surname.clone());
    p.email.clone_from(&c.email);
    p
}

/// A group as the generator holds it, active and without a parent, under
/// `id` and with its year named by `year`; providers with their own group
/// kinds or subjects replace those fields.
fn group(grp: &g::Group, id: String, year: fn(u8) -> String) -> Group {
    Group {
        id,
        kind: grp.kind,
        name: grp.name.clone(),
        code: Some(grp.code.clone()),
        subject: grp.subject.clone(),
        year_group: grp.year.map(year),
        active: true,
        parent: None,
    }
}

/// The ids a membership names: its group's and its members', by kind.
#[derive(Clone, Copy)]
struct MemberIds {
    group: fn(u64) -> String,
    teacher: fn(u64) -> String,
    student: fn(u64) -> String,
}

impl MemberIds {
    /// One id space for groups and people alike (every provider but
    /// OneRoster, which prefixes ids by kind).
    const fn shared(id: fn(u64) -> String) -> Self {
        Self {
            group: id,
            teacher: id,
            student: id,
        }
    }
}

/// Which of a group's teachers a provider lists as teacher members.
#[derive(Clone, Copy)]
enum Teachers {
    /// Those still on the staff list.
    Live,
    /// Every teacher the group names, without checking the staff list, as
    /// the OneRoster drop writes its teacher enrollments.
    Named,
    /// None (Arbor's registration forms, which have no lead resource).
    Omitted,
}

/// A group's teacher memberships, then those of the live pupils the
/// provider serves.
fn memberships(
    sch: &School,
    grp: &g::Group,
    ids: MemberIds,
    teachers: Teachers,
    pupil_served: impl Fn(&g::Student) -> bool,
) -> Vec<Record> {
    let teacher_listed = |t: &&u64| match teachers {
        Teachers::Live => sch.staff.get(t).is_some_and(|s| s.stamp.live()),
        Teachers::Named => true,
        Teachers::Omitted => false,
    };
    let pupil_listed = |s: &&u64| {
        sch.students
            .get(s)
            .is_some_and(|st| st.stamp.live() && pupil_served(st))
    };
    let member = |person: String, role: MemberRole| {
        Record::Membership(Membership {
            group: (ids.group)(grp.uid),
            person,
            role,
            start_date: None,
            end_date: None,
        })
    };
    let teachers = grp.teachers.iter().filter(teacher_listed);
    let pupils = grp.students.iter().filter(pupil_listed);
    teachers
        .map(|t| member((ids.teacher)(*t), MemberRole::Teacher))
        .chain(pupils.map(|s| member((ids.student)(*s), MemberRole::Student)))
        .collect()
}

/// A pupil's relationships as the MIS holds them (relationship, priority and
/// parental responsibility as given), with the contact type by priority: 1
/// primary, 2 secondary, 3 and later emergency.
fn relationships_by_priority(sch: &School, s: &g::Student, id: fn(u64) -> String) -> Vec<Record> {
    sch.contacts_of(s.uid)
        .into_iter()
        .map(|(c, link)| {
            Record::Relationship(Relationship {
                student: id(s.uid),
                contact: id(c.uid),
                contact_type: match link.priority {
                    1 => ContactType::Primary,
                    2 => ContactType::Secondary,
                    _ => ContactType::Emergency,
                },
                relationship: Some(link.relationship.clone()),
                priority: Some(link.priority),
                parental_responsibility: link.parental_responsibility,
            })
        })
        .collect()
}

/// A pupil as the MIS-style providers serve them: the preferred forename
/// (the legal one when none is set), dates, enrolment, year (none for an
/// applicant, not yet in one) and registration group.
fn mis_pupil(sch: &School, s: &g::Student, id: String) -> Person {
    let mut p = pupil(id, s);
    p.preferred_first_name = Some(
        s.preferred_forename
            .clone()
            .unwrap_or_else(|| s.forename.clone()),
    );
    p.start_date = Some(s.start_date);
    p.leaving_date = s.leaving_date;
    p.enrolment = Some(s.status);
    if s.status != EnrolmentStatus::Prospective {
        p.year_group = Some(year_name(s.year));
    }
    p.registration_group = sch.group(s.registration).and_then(|g| g.name.clone());
    p
}

/// [`mis_pupil`] with an applicant's admission details (Wonde, Xporter).
fn mis_pupil_with_admission(sch: &School, s: &g::Student, id: String) -> Person {
    Person {
        admission: s.admission.as_ref().map(|a| Admission {
            application_active: a.application_active,
            admission_date: Some(a.admission_date),
            admission_status: Some(a.admission_status.clone()),
            intake_group: Some(a.intake.clone()),
        }),
        ..mis_pupil(sch, s, id)
    }
}

/// How an MIS-style provider (Wonde, Arbor, Xporter, Scholarpack) serves a
/// school. They share one mapping: one id space for all records, pupils
/// from [`mis_pupil`], staff and contacts with their titles, groups as the
/// MIS holds them and relationships by priority. [`Default`] is that
/// mapping over everything the MIS holds, keyed by generator uid; each
/// provider states where it departs from it.
struct MisExport {
    /// The provider's id for a generator uid.
    id: fn(u64) -> String,
    /// The pupils it serves; their memberships and relationships go with them.
    serves: fn(&g::Student) -> bool,
    /// A served pupil's record, under the given id.
    pupil: fn(&School, &g::Student, String) -> Person,
    /// Staff and contacts have their forename as preferred first name too.
    staff_and_contacts_have_preferred_name: bool,
    /// Only contacts of a served pupil are listed, not every live contact.
    only_contacts_of_served_pupils: bool,
    /// The groups it serves.
    groups: fn(&g::Group) -> bool,
    /// Groups carry their subject and year.
    groups_have_subject_and_year: bool,
    /// Registration groups carry their year.
    registration_years: bool,
    /// Registration groups list their tutors as teacher members.
    registration_tutors: bool,
    /// Relationships come after every other record rather than after each
    /// pupil; only the order of the list changes.
    relationships_last: bool,
}

impl Default for MisExport {
    fn default() -> Self {
        Self {
            id: uid_id,
            serves: |_| true,
            pupil: mis_pupil,
            staff_and_contacts_have_preferred_name: false,
            only_contacts_of_served_pupils: false,
            groups: |_| true,
            groups_have_subject_and_year: true,
            registration_years: true,
            registration_tutors: true,
            relationships_last: false,
        }
    }
}

impl MisExport {
    /// Everything the provider serves for a school.
    fn records(&self, sch: &School) -> Vec<Record> {
        let id = self.id;
        // Staff and contacts alike carry their title, and the forename as
        // preferred first name where the provider gives them one.
        let adult = |mut p: Person, title: &str| {
            p.salutation = Some(title.to_string());
            if self.staff_and_contacts_have_preferred_name {
                p.preferred_first_name.clone_from(&p.first_name);
            }
            Record::Person(p)
        };
        let mut out = vec![];
        let mut relationships = vec![];
        for s in sch.live_students().filter(|s| (self.serves)(s)) {
            out.push(Record::Person((self.pupil)(sch, s, id(s.uid))));
            let links = relationships_by_priority(sch, s, id);
            if self.relationships_last {
                relationships.extend(links);
            } else {
                out.extend(links);
            }
        }
        for s in sch.live_staff() {
            let p = Person {
                date_of_birth: Some(s.date_of_birth),
                ..staff_member(id(s.uid), s)
            };
            out.push(adult(p, &s.title));
        }
        let contact_served = |c: &g::Contact| {
            !self.only_contacts_of_served_pupils
                || sch.students_of(c.uid).iter().any(|(s, _)| (self.serves)(s))
        };
        for c in sch.live_contacts().filter(|c| contact_served(c)) {
            out.push(adult(contact(id(c.uid), c), &c.title));
        }
        for grp in sch.live_groups().filter(|g| (self.groups)(g)) {
            let mut record = group(grp, id(grp.uid), year_name);
            if !self.groups_have_subject_and_year {
                record.subject = None;
                record.year_group = None;
            }
            if grp.kind == GroupKind::Registration && !self.registration_years {
                record.year_group = None;
            }
            out.push(Record::Group(record));
            let teachers = if grp.kind == GroupKind::Registration && !self.registration_tutors {
                Teachers::Omitted
            } else {
                Teachers::Live
            };
            out.extend(memberships(
                sch,
                grp,
                MemberIds::shared(id),
                teachers,
                self.serves,
            ));
        }
        out.extend(relationships);
        out
    }
}

/// What a Wonde connector should read for a school.
pub fn wonde(world: &World, school: usize) -> Vec<Record> {
    MisExport {
        id: wonde::id,
        pupil: mis_pupil_with_admission,
        staff_and_contacts_have_preferred_name: true,
        relationships_last: true,
        ..MisExport::default()
    }
    .records(&world.schools[school])
}

/// What an Arbor connector should read for a school.
pub fn arbor(world: &World, school: usize) -> Vec<Record> {
    MisExport {
        serves: arbor::in_arbor,
        pupil: |sch, s, id| Person {
            // Arbor's student resource has no leaving date.
            leaving_date: None,
            ..mis_pupil(sch, s, id)
        },
        staff_and_contacts_have_preferred_name: true,
        only_contacts_of_served_pupils: true,
        groups: |g| matches!(g.kind, GroupKind::Class | GroupKind::Registration),
        // Arbor's registration form has no year, and its tutors are not
        // served.
        registration_years: false,
        registration_tutors: false,
        ..MisExport::default()
    }
    .records(&world.schools[school])
}

/// What a Groupcall Xporter connector should read for a school.
pub fn xporter(world: &World, school: usize) -> Vec<Record> {
    MisExport {
        pupil: mis_pupil_with_admission,
        // `Forename` beside `LegalForename` on staff rows too.
        staff_and_contacts_have_preferred_name: true,
        // No recorded group row carries a subject or a year.
        groups_have_subject_and_year: false,
        ..MisExport::default()
    }
    .records(&world.schools[school])
}

/// What a Scholarpack connector should read for a school.
pub fn scholarpack(world: &World, school: usize) -> Vec<Record> {
    MisExport {
        pupil: |sch, s, id| Person {
            // Scholarpack has no preferred name unless one is set.
            preferred_first_name: s.preferred_forename.clone(),
            ..mis_pupil(sch, s, id)
        },
        ..MisExport::default()
    }
    .records(&world.schools[school])
}

fn username(email: &Option<String>) -> Option<String> {
    email
        .as_ref()
        .map(|e| e.split('@').next().unwrap_or_default().to_string())
}

/// What a Clever connector should read for a school.
pub fn clever(world: &World, school: usize) -> Vec<Record> {
    let sch = &world.schools[school];
    let id = clever::id;
    let mut out = vec![];
    for s in sch.live_students().filter(|s| clever::in_clever(s)) {
        out.push(Record::Person(Person {
            username: username(&s.email),
            start_date: Some(s.start_date),
            enrolment: Some(EnrolmentStatus::OnRoll),
            year_group: Some(clever::grade(s.year)),
            // The name of the `homeroom/advisory` section listing the pupil.
            registration_group: sch.group(s.registration).and_then(|g| g.name.clone()),
            ..pupil(id(s.uid), s)
        }));
    }
    for s in sch.live_staff() {
        out.push(Record::Person(Person {
            salutation: Some(s.title.clone()),
            username: username(&s.email),
            ..staff_member(id(s.uid), s)
        }));
    }
    for c in sch.live_contacts() {
        let links = clever::visible_students(sch, c);
        if links.is_empty() {
            continue;
        }
        let mut p = Person::new(id(c.uid), Role::Contact);
        p.mis_id = Some(c.mis_id.clone());
        p.last_name = Some(format!("{} {}", c.forename, c.surname));
        p.email.clone_from(&c.email);
        out.push(Record::Person(p));
        for (s, link) in links {
            let relationship = clever::relationship(&link.relationship);
            out.push(Record::Relationship(Relationship {
                student: id(s.uid),
                contact: id(c.uid),
                contact_type: link.contact_type,
                relationship: Some(relationship.into()),
                priority: None,
                parental_responsibility: relationship == "Parent",
            }));
        }
    }
    for grp in sch.live_groups().filter(|g| clever::is_section(g)) {
        out.push(Record::Group(Group {
            subject: Some(clever::subject(grp).into()),
            ..group(grp, id(grp.uid), clever::grade)
        }));
        out.extend(memberships(
            sch,
            grp,
            MemberIds::shared(id),
            Teachers::Live,
            clever::in_clever,
        ));
    }
    out
}

/// What a OneRoster CSV connector should read from the sandbox's 1.2 bulk
/// drop: the 1.1 records, but pupils' rows leave `agentSourcedIds` empty,
/// so each link comes from the contact's row, which gives no order and so
/// no priority.
pub fn oneroster_1_2(world: &World, school: usize) -> Vec<Record> {
    oneroster(world, school)
        .into_iter()
        .map(|record| match record {
            Record::Relationship(link) => Record::Relationship(Relationship {
                priority: None,
                ..link
            }),
            other => other,
        })
        .collect()
}

/// What a OneRoster 1.1 CSV connector should read from a bulk drop.
pub fn oneroster(world: &World, school: usize) -> Vec<Record> {
    let sch = &world.schools[school];
    let mut out = vec![];
    for s in sch.live_students().filter(|s| oneroster::exported(s)) {
        out.push(Record::Person(Person {
            mis_id: Some(s.upn.clone()),
            username: s.email.clone(),
            enrolment: Some(EnrolmentStatus::OnRoll),
            year_group: Some(oneroster::grade(s.year)),
            ..pupil(oneroster::student_id(s.uid), s)
        }));
        for (pos, (c, _)) in sch.contacts_of(s.uid).into_iter().enumerate() {
            let links = sch.students_of(c.uid);
            let role = links
                .iter()
                .find(|(st, _)| oneroster::exported(st))
                .map_or("relative", |(_, l)| {
                    oneroster::contact_role(&l.relationship)
                });
            out.push(Record::Relationship(Relationship {
                student: oneroster::student_id(s.uid),
                contact: oneroster::contact_id(c.uid),
                contact_type: ContactType::Other,
                relationship: Some(role.into()),
                priority: Some(pos as u32 + 1),
                parental_responsibility: matches!(role, "parent" | "guardian"),
            }));
        }
    }
    for s in sch.live_staff() {
        out.push(Record::Person(Person {
            username: s.email.clone(),
            ..staff_member(oneroster::staff_id(s.uid), s)
        }));
    }
    for c in sch.live_contacts() {
        if !sch
            .students_of(c.uid)
            .iter()
            .any(|(s, _)| oneroster::exported(s))
        {
            continue;
        }
        out.push(Record::Person(Person {
            username: c.email.clone(),
            ..contact(oneroster::contact_id(c.uid), c)
        }));
    }
    let ids = MemberIds {
        group: oneroster::class_id,
        teacher: oneroster::staff_id,
        student: oneroster::student_id,
    };
    for grp in sch.live_groups().filter(|g| oneroster::is_class(g)) {
        out.push(Record::Group(Group {
            // `homeroom` classes are registration groups, `scheduled` ones
            // teaching classes.
            kind: if grp.kind == GroupKind::Registration {
                GroupKind::Registration
            } else {
                GroupKind::Class
            },
            ..group(grp, oneroster::class_id(grp.uid), oneroster::grade)
        }));
        out.extend(memberships(
            sch,
            grp,
            ids,
            Teachers::Named,
            oneroster::exported,
        ));
    }
    out
}
