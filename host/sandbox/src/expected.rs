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
//! `last_name` only. `year_group` is the Clever `grade` (UK year − 1);
//! `start_date` is the enrollment's `start_date`. Sections with subject
//! `homeroom/advisory` are `Registration` groups, the others `Class`
//! groups with Clever's subject enum as the subject. Memberships are
//! `students[]` and `teachers[]`. Relationships are
//! `roles.contact.student_relationships`: `relationship` is Clever's enum
//! (Parent, Grandparent, Aunt/Uncle, Other), `type` Primary, Secondary or
//! Emergency maps to the contact type, no priority, and parental
//! responsibility is `relationship == Parent`.
//!
//! **Arbor.** Ids are Arbor's numeric ids as strings. Only pupils on roll
//! are served. Names come from the embedded `person` (`legalFirstName`,
//! `preferredFirstName`, `legalMiddleNames`, `legalLastName`,
//! `dateOfBirth`); `mis_id` is `studentNumber`/`staffNumber`/
//! `legacySystemId`; email is `emailAddress.emailAddress`; `year_group` is
//! `yearGroup`; `registration_group` is the name of the pupil's
//! `registrationForm`. `registration-forms` are `Registration` groups and
//! `academic-units` `Class` groups; Arbor has no year or house groups
//! here. Memberships are `registration-form-memberships`,
//! `academic-unit-enrolments` (Student) and `academic-unit-leads`
//! (Teacher). Relationships are `student-guardian-relationships`:
//! `guardianRelationshipType.label`, `emergencyContactPriority` as the
//! priority and the contact type (1 primary, 2 secondary, later
//! emergency), `isLegalGuardian` as parental responsibility.
//!
//! **Xporter.** Ids are Xporter `Id`s as strings; pupils are read with
//! `studentStatus=All`. `mis_id` is `ExternalId`; `first_name` is
//! `LegalForename`, `preferred_first_name` `PreferredForename`; enrolment is
//! `Status` (OnRoll, Leaver, Applicant) and the admission comes from
//! `ApplicationActive`, `AdmissionDate`, `AdmissionStatus`, `IntakeGroup`.
//! Groups are every `Group` row, kind by `Type` (Class, RegGroup,
//! YearGroup, House); memberships are `StudentIds` and `StaffIds` (Teacher).
//! Relationships are each contact's `Students` entries with their
//! `ContactType`, `Relationship`, `Priority` and `ParentalResponsibility`.
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

fn year_name(y: u8) -> String {
    format!("Year {y}")
}

fn memberships(
    sch: &School,
    group: &g::Group,
    id: impl Fn(u64) -> String,
    student_visible: impl Fn(&g::Student) -> bool,
) -> Vec<Record> {
    let mut out = vec![];
    for t in &group.teachers {
        if sch.staff.get(t).is_some_and(|s| s.stamp.live()) {
            out.push(Record::Membership(Membership {
                group: id(group.uid),
                person: id(*t),
                role: MemberRole::Teacher,
                start_date: None,
                end_date: None,
            }));
        }
    }
    for s in &group.students {
        if sch
            .students
            .get(s)
            .is_some_and(|st| st.stamp.live() && student_visible(st))
        {
            out.push(Record::Membership(Membership {
                group: id(group.uid),
                person: id(*s),
                role: MemberRole::Student,
                start_date: None,
                end_date: None,
            }));
        }
    }
    out
}

/// What a Wonde connector should read for a school.
pub fn wonde(world: &World, school: usize) -> Vec<Record> {
    let sch = &world.schools[school];
    let id = wonde::id;
    let mut out = vec![];
    for s in sch.live_students() {
        let mut p = Person::new(id(s.uid), Role::Student);
        p.mis_id = Some(s.mis_id.clone());
        p.first_name = Some(s.forename.clone());
        p.preferred_first_name = Some(
            s.preferred_forename
                .clone()
                .unwrap_or_else(|| s.forename.clone()),
        );
        p.middle_names.clone_from(&s.middle_names);
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        p.start_date = Some(s.start_date);
        p.leaving_date = s.leaving_date;
        p.enrolment = Some(s.status);
        if s.status != EnrolmentStatus::Prospective {
            p.year_group = Some(year_name(s.year));
        }
        p.registration_group = sch.group(s.registration).and_then(|g| g.name.clone());
        p.admission = s.admission.as_ref().map(|a| Admission {
            application_active: a.application_active,
            admission_date: Some(a.admission_date),
            admission_status: Some(a.admission_status.clone()),
            intake_group: Some(a.intake.clone()),
        });
        out.push(Record::Person(p));
    }
    for s in sch.live_staff() {
        let mut p = Person::new(id(s.uid), Role::Staff);
        p.mis_id = Some(s.mis_id.clone());
        p.salutation = Some(s.title.clone());
        p.first_name = Some(s.forename.clone());
        p.preferred_first_name = Some(s.forename.clone());
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        out.push(Record::Person(p));
    }
    for c in sch.live_contacts() {
        let mut p = Person::new(id(c.uid), Role::Contact);
        p.mis_id = Some(c.mis_id.clone());
        p.salutation = Some(c.title.clone());
        p.first_name = Some(c.forename.clone());
        p.preferred_first_name = Some(c.forename.clone());
        p.last_name = Some(c.surname.clone());
        p.email.clone_from(&c.email);
        out.push(Record::Person(p));
    }
    for grp in sch.live_groups() {
        out.push(Record::Group(Group {
            id: id(grp.uid),
            kind: grp.kind,
            name: grp.name.clone(),
            code: Some(grp.code.clone()),
            subject: grp.subject.clone(),
            year_group: grp.year.map(year_name),
            active: true,
            parent: None,
        }));
        out.extend(memberships(sch, grp, id, |_| true));
    }
    for s in sch.live_students() {
        for (c, link) in sch.contacts_of(s.uid) {
            out.push(Record::Relationship(Relationship {
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
            }));
        }
    }
    out
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
        let mut p = Person::new(id(s.uid), Role::Student);
        p.mis_id = Some(s.mis_id.clone());
        p.first_name = Some(s.forename.clone());
        p.middle_names.clone_from(&s.middle_names);
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.username = username(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        p.start_date = Some(s.start_date);
        p.enrolment = Some(EnrolmentStatus::OnRoll);
        p.year_group = Some(clever::grade(s.year));
        out.push(Record::Person(p));
    }
    for s in sch.live_staff() {
        let mut p = Person::new(id(s.uid), Role::Staff);
        p.mis_id = Some(s.mis_id.clone());
        p.salutation = Some(s.title.clone());
        p.first_name = Some(s.forename.clone());
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.username = username(&s.email);
        out.push(Record::Person(p));
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
            id: id(grp.uid),
            kind: grp.kind,
            name: grp.name.clone(),
            code: Some(grp.code.clone()),
            subject: Some(clever::subject(grp).into()),
            year_group: grp.year.map(clever::grade),
            active: true,
            parent: None,
        }));
        out.extend(memberships(sch, grp, id, clever::in_clever));
    }
    out
}

/// What a OneRoster 1.1 CSV connector should read from a bulk drop.
pub fn oneroster(world: &World, school: usize) -> Vec<Record> {
    let sch = &world.schools[school];
    let mut out = vec![];
    for s in sch.live_students().filter(|s| oneroster::exported(s)) {
        let mut p = Person::new(oneroster::student_id(s.uid), Role::Student);
        p.mis_id = Some(s.upn.clone());
        p.first_name = Some(s.forename.clone());
        p.middle_names.clone_from(&s.middle_names);
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.username.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        p.enrolment = Some(EnrolmentStatus::OnRoll);
        p.year_group = Some(oneroster::grade(s.year));
        out.push(Record::Person(p));
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
        let mut p = Person::new(oneroster::staff_id(s.uid), Role::Staff);
        p.mis_id = Some(s.mis_id.clone());
        p.first_name = Some(s.forename.clone());
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.username.clone_from(&s.email);
        out.push(Record::Person(p));
    }
    for c in sch.live_contacts() {
        if !sch
            .students_of(c.uid)
            .iter()
            .any(|(s, _)| oneroster::exported(s))
        {
            continue;
        }
        let mut p = Person::new(oneroster::contact_id(c.uid), Role::Contact);
        p.mis_id = Some(c.mis_id.clone());
        p.first_name = Some(c.forename.clone());
        p.last_name = Some(c.surname.clone());
        p.email.clone_from(&c.email);
        p.username.clone_from(&c.email);
        out.push(Record::Person(p));
    }
    for grp in sch.live_groups().filter(|g| oneroster::is_class(g)) {
        out.push(Record::Group(Group {
            id: oneroster::class_id(grp.uid),
            kind: if grp.kind == GroupKind::Registration {
                GroupKind::Registration
            } else {
                GroupKind::Class
            },
            name: grp.name.clone(),
            code: Some(grp.code.clone()),
            subject: grp.subject.clone(),
            year_group: grp.year.map(oneroster::grade),
            active: true,
            parent: None,
        }));
        for t in &grp.teachers {
            out.push(Record::Membership(Membership {
                group: oneroster::class_id(grp.uid),
                person: oneroster::staff_id(*t),
                role: MemberRole::Teacher,
                start_date: None,
                end_date: None,
            }));
        }
        for s in grp.students.iter().filter(|u| {
            sch.students
                .get(u)
                .is_some_and(|s| s.stamp.live() && oneroster::exported(s))
        }) {
            out.push(Record::Membership(Membership {
                group: oneroster::class_id(grp.uid),
                person: oneroster::student_id(*s),
                role: MemberRole::Student,
                start_date: None,
                end_date: None,
            }));
        }
    }
    out
}

fn contact_type_by_priority(priority: u32) -> ContactType {
    match priority {
        1 => ContactType::Primary,
        2 => ContactType::Secondary,
        _ => ContactType::Emergency,
    }
}

fn uid_id(uid: u64) -> String {
    uid.to_string()
}

/// What an Arbor connector should read for a school.
pub fn arbor(world: &World, school: usize) -> Vec<Record> {
    let sch = &world.schools[school];
    let mut out = vec![];
    for s in sch.live_students().filter(|s| arbor::in_arbor(s)) {
        let mut p = Person::new(uid_id(s.uid), Role::Student);
        p.mis_id = Some(s.mis_id.clone());
        p.first_name = Some(s.forename.clone());
        p.preferred_first_name = Some(
            s.preferred_forename
                .clone()
                .unwrap_or_else(|| s.forename.clone()),
        );
        p.middle_names.clone_from(&s.middle_names);
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        p.start_date = Some(s.start_date);
        p.enrolment = Some(EnrolmentStatus::OnRoll);
        p.year_group = Some(year_name(s.year));
        p.registration_group = sch.group(s.registration).and_then(|g| g.name.clone());
        out.push(Record::Person(p));
        for (c, link) in sch.contacts_of(s.uid) {
            out.push(Record::Relationship(Relationship {
                student: uid_id(s.uid),
                contact: uid_id(c.uid),
                contact_type: contact_type_by_priority(link.priority),
                relationship: Some(link.relationship.clone()),
                priority: Some(link.priority),
                parental_responsibility: link.parental_responsibility,
            }));
        }
    }
    for s in sch.live_staff() {
        let mut p = Person::new(uid_id(s.uid), Role::Staff);
        p.mis_id = Some(s.mis_id.clone());
        p.salutation = Some(s.title.clone());
        p.first_name = Some(s.forename.clone());
        p.preferred_first_name = Some(s.forename.clone());
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        out.push(Record::Person(p));
    }
    for c in sch.live_contacts() {
        if !sch
            .students_of(c.uid)
            .iter()
            .any(|(s, _)| arbor::in_arbor(s))
        {
            continue;
        }
        let mut p = Person::new(uid_id(c.uid), Role::Contact);
        p.mis_id = Some(c.mis_id.clone());
        p.salutation = Some(c.title.clone());
        p.first_name = Some(c.forename.clone());
        p.preferred_first_name = Some(c.forename.clone());
        p.last_name = Some(c.surname.clone());
        p.email.clone_from(&c.email);
        out.push(Record::Person(p));
    }
    for grp in sch
        .live_groups()
        .filter(|g| matches!(g.kind, GroupKind::Class | GroupKind::Registration))
    {
        out.push(Record::Group(Group {
            id: uid_id(grp.uid),
            kind: grp.kind,
            name: grp.name.clone(),
            code: Some(grp.code.clone()),
            subject: grp.subject.clone(),
            year_group: grp.year.map(year_name),
            active: true,
            parent: None,
        }));
        let mut members = memberships(sch, grp, uid_id, arbor::in_arbor);
        if grp.kind == GroupKind::Registration {
            // Arbor has no lead resource for registration forms.
            members
                .retain(|m| !matches!(m, Record::Membership(m) if m.role == MemberRole::Teacher));
        }
        out.extend(members);
    }
    out
}

/// People, groups, memberships and relationships of a full MIS export
/// keyed by generator uid (Xporter and Scholarpack).
fn full_export(
    world: &World,
    school: usize,
    always_preferred: bool,
    admission: bool,
) -> Vec<Record> {
    let sch = &world.schools[school];
    let mut out = vec![];
    for s in sch.live_students() {
        let mut p = Person::new(uid_id(s.uid), Role::Student);
        p.mis_id = Some(s.mis_id.clone());
        p.first_name = Some(s.forename.clone());
        p.preferred_first_name = if always_preferred {
            Some(
                s.preferred_forename
                    .clone()
                    .unwrap_or_else(|| s.forename.clone()),
            )
        } else {
            s.preferred_forename.clone()
        };
        p.middle_names.clone_from(&s.middle_names);
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        p.start_date = Some(s.start_date);
        p.leaving_date = s.leaving_date;
        p.enrolment = Some(s.status);
        if s.status != EnrolmentStatus::Prospective {
            p.year_group = Some(year_name(s.year));
        }
        p.registration_group = sch.group(s.registration).and_then(|g| g.name.clone());
        if admission {
            p.admission = s.admission.as_ref().map(|a| Admission {
                application_active: a.application_active,
                admission_date: Some(a.admission_date),
                admission_status: Some(a.admission_status.clone()),
                intake_group: Some(a.intake.clone()),
            });
        }
        out.push(Record::Person(p));
        for (c, link) in sch.contacts_of(s.uid) {
            out.push(Record::Relationship(Relationship {
                student: uid_id(s.uid),
                contact: uid_id(c.uid),
                contact_type: contact_type_by_priority(link.priority),
                relationship: Some(link.relationship.clone()),
                priority: Some(link.priority),
                parental_responsibility: link.parental_responsibility,
            }));
        }
    }
    for s in sch.live_staff() {
        let mut p = Person::new(uid_id(s.uid), Role::Staff);
        p.mis_id = Some(s.mis_id.clone());
        p.salutation = Some(s.title.clone());
        p.first_name = Some(s.forename.clone());
        p.last_name = Some(s.surname.clone());
        p.email.clone_from(&s.email);
        p.date_of_birth = Some(s.date_of_birth);
        out.push(Record::Person(p));
    }
    for c in sch.live_contacts() {
        let mut p = Person::new(uid_id(c.uid), Role::Contact);
        p.mis_id = Some(c.mis_id.clone());
        p.salutation = Some(c.title.clone());
        p.first_name = Some(c.forename.clone());
        p.last_name = Some(c.surname.clone());
        p.email.clone_from(&c.email);
        out.push(Record::Person(p));
    }
    for grp in sch.live_groups() {
        out.push(Record::Group(Group {
            id: uid_id(grp.uid),
            kind: grp.kind,
            name: grp.name.clone(),
            code: Some(grp.code.clone()),
            subject: grp.subject.clone(),
            year_group: grp.year.map(year_name),
            active: true,
            parent: None,
        }));
        out.extend(memberships(sch, grp, uid_id, |_| true));
    }
    out
}

/// What a Groupcall Xporter connector should read for a school.
pub fn xporter(world: &World, school: usize) -> Vec<Record> {
    full_export(world, school, true, true)
}

/// What a Scholarpack connector should read for a school.
pub fn scholarpack(world: &World, school: usize) -> Vec<Record> {
    full_export(world, school, false, false)
}
