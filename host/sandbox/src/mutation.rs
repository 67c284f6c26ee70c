//! Changes between runs: add, edit, remove and move pupils.
//!
//! Every mutation bumps the world revision and advances the sandbox clock
//! by one minute, and stamps what it touched, so each provider's change
//! feed (Wonde `updated_after` and deletions, Clever events, Arbor
//! changelog, Xporter changesets, OneRoster delta) sees it. Removed records
//! stay as tombstones so deletion feeds can still name them.

use chrono::Duration;
use rand::Rng;
use rostersync_model::{ContactType, EnrolmentStatus, GroupKind};

use crate::generator::{
    Contact, ContactLink, School, Stamp, Student, World, academic_year_start, pupil_email,
    random_name,
};

/// One change to a school. A pupil is named by its generator uid or, when
/// `None`, picked deterministically among the school's pupils on roll.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Mutation {
    /// A new pupil on roll with one contact, in a registration group and classes.
    AddPupil,
    /// Changes the pupil's surname and email.
    EditPupil { pupil: Option<u64> },
    /// The pupil disappears from the MIS (not a leaver: a deletion).
    RemovePupil { pupil: Option<u64> },
    /// Moves the pupil from one teaching class to the other set of the same subject.
    MovePupil { pupil: Option<u64> },
    /// A pupil removed earlier comes back as the same person (same ids),
    /// in the groups they left, with the contacts that went with them.
    ReturnPupil { pupil: u64 },
}

/// What a mutation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MutationOutcome {
    pub revision: u64,
    pub pupil: u64,
    /// Groups whose membership changed.
    pub groups: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MutationError {
    #[error("no school with index {0}")]
    NoSuchSchool(usize),
    #[error("no live pupil {0} on roll at that school")]
    NoSuchPupil(u64),
    #[error("the school has no pupil on roll to change")]
    NoPupils,
    #[error("pupil {0} was not removed from that school, so cannot return")]
    NotRemoved(u64),
}

/// The contacts linked to a pupil.
fn contacts_of(school: &School, pupil: u64) -> Vec<u64> {
    school
        .links
        .range((pupil, 0)..=(pupil, u64::MAX))
        .map(|((_, c), _)| *c)
        .collect()
}

impl World {
    /// Applies one mutation to a school.
    pub fn mutate(
        &mut self,
        school: usize,
        mutation: &Mutation,
    ) -> Result<MutationOutcome, MutationError> {
        if school >= self.schools.len() {
            return Err(MutationError::NoSuchSchool(school));
        }
        let rev = self.revision + 1;
        let at = self.now + Duration::minutes(1);
        let outcome = match mutation {
            Mutation::AddPupil => self.add_pupil(school, rev, at)?,
            Mutation::EditPupil { pupil } => {
                let uid = self.choose(school, *pupil)?;
                let (forename, surname) = random_name(&mut self.rng);
                let s = self.schools[school].students.get_mut(&uid).unwrap();
                s.surname = format!("{surname}-{}", s.surname);
                s.email = Some(pupil_email(&forename, &s.surname, uid, school));
                s.stamp.touch(rev, at);
                MutationOutcome {
                    revision: rev,
                    pupil: uid,
                    groups: vec![],
                }
            }
            Mutation::RemovePupil { pupil } => {
                let uid = self.choose(school, *pupil)?;
                let sch = &mut self.schools[school];
                sch.students.get_mut(&uid).unwrap().stamp.delete(rev, at);
                let mut groups = vec![];
                for g in sch.groups.values_mut() {
                    if g.students.remove(&uid) {
                        g.departed.insert(uid, rev);
                        g.stamp.touch(rev, at);
                        groups.push(g.uid);
                    }
                }
                // Contacts who only had this pupil go too.
                for c in contacts_of(sch, uid) {
                    let others = sch
                        .links_by_contact
                        .range((c, 0)..=(c, u64::MAX))
                        .any(|(_, s)| *s != uid);
                    if !others {
                        sch.contacts.get_mut(&c).unwrap().stamp.delete(rev, at);
                    }
                }
                MutationOutcome {
                    revision: rev,
                    pupil: uid,
                    groups,
                }
            }
            Mutation::ReturnPupil { pupil } => {
                let uid = *pupil;
                let sch = &mut self.schools[school];
                let removed = sch
                    .students
                    .get(&uid)
                    .and_then(|s| s.stamp.deleted)
                    .ok_or(MutationError::NotRemoved(uid))?
                    .0;
                let student = sch.students.get_mut(&uid).unwrap();
                student.stamp.deleted = None;
                student.stamp.touch(rev, at);
                let mut groups = vec![];
                for g in sch.groups.values_mut() {
                    if g.departed.get(&uid) == Some(&removed) {
                        g.departed.remove(&uid);
                        g.students.insert(uid);
                        g.stamp.touch(rev, at);
                        groups.push(g.uid);
                    }
                }
                for c in contacts_of(sch, uid) {
                    let contact = sch.contacts.get_mut(&c).unwrap();
                    if contact.stamp.deleted.is_some_and(|(r, _)| r == removed) {
                        contact.stamp.deleted = None;
                        contact.stamp.touch(rev, at);
                    }
                }
                MutationOutcome {
                    revision: rev,
                    pupil: uid,
                    groups,
                }
            }
            Mutation::MovePupil { pupil } => {
                let uid = self.choose(school, *pupil)?;
                let sch = &mut self.schools[school];
                let from = sch
                    .groups
                    .values()
                    .find(|g| {
                        g.kind == GroupKind::Class && g.stamp.live() && g.students.contains(&uid)
                    })
                    .map(|g| (g.uid, g.subject.clone(), g.year))
                    .ok_or(MutationError::NoSuchPupil(uid))?;
                let to = sch
                    .groups
                    .values()
                    .find(|g| {
                        g.kind == GroupKind::Class
                            && g.stamp.live()
                            && g.uid != from.0
                            && g.subject == from.1
                            && g.year == from.2
                    })
                    .map(|g| g.uid)
                    .ok_or(MutationError::NoSuchPupil(uid))?;
                for (g, add) in [(from.0, false), (to, true)] {
                    let group = sch.groups.get_mut(&g).unwrap();
                    if add {
                        group.students.insert(uid);
                        group.departed.remove(&uid);
                    } else {
                        group.students.remove(&uid);
                        group.departed.insert(uid, rev);
                    }
                    group.stamp.touch(rev, at);
                }
                // The pupil's classes include changed, so Wonde reports the pupil as updated.
                sch.students.get_mut(&uid).unwrap().stamp.touch(rev, at);
                MutationOutcome {
                    revision: rev,
                    pupil: uid,
                    groups: vec![from.0, to],
                }
            }
        };
        self.revision = rev;
        self.now = at;
        Ok(outcome)
    }

    fn choose(&mut self, school: usize, pupil: Option<u64>) -> Result<u64, MutationError> {
        let sch = &self.schools[school];
        let on_roll: Vec<u64> = sch
            .live_students()
            .filter(|s| s.status == EnrolmentStatus::OnRoll)
            .map(|s| s.uid)
            .collect();
        match pupil {
            Some(p) if on_roll.contains(&p) => Ok(p),
            Some(p) => Err(MutationError::NoSuchPupil(p)),
            None if on_roll.is_empty() => Err(MutationError::NoPupils),
            None => Ok(on_roll[self.rng.random_range(0..on_roll.len())]),
        }
    }

    fn add_pupil(
        &mut self,
        school: usize,
        rev: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<MutationOutcome, MutationError> {
        let uid = self.fresh_uid();
        let cuid = self.fresh_uid();
        let (forename, surname) = random_name(&mut self.rng);
        let (cforename, _) = random_name(&mut self.rng);
        let sch = &mut self.schools[school];
        let registration = sch
            .live_groups()
            .find(|g| g.kind == GroupKind::Registration && g.year == Some(7))
            .map(|g| g.uid);
        let house = sch
            .live_groups()
            .find(|g| g.kind == GroupKind::House)
            .map(|g| g.uid);
        let year = sch.year_group(7).map(|g| g.uid);
        let mut classes = vec![];
        let mut seen_subjects = std::collections::BTreeSet::new();
        for g in sch.live_groups() {
            if g.kind == GroupKind::Class
                && g.year == Some(7)
                && seen_subjects.insert(g.subject.clone())
            {
                classes.push(g.uid);
            }
        }
        let mut groups = vec![];
        for g in [registration, house, year]
            .into_iter()
            .flatten()
            .chain(classes)
        {
            let group = sch.groups.get_mut(&g).unwrap();
            group.students.insert(uid);
            group.stamp.touch(rev, at);
            groups.push(g);
        }
        let n = sch.students.len();
        sch.students.insert(
            uid,
            Student {
                uid,
                mis_id: format!("{}", 10_000 + n),
                upn: format!("N{:03}{:06}X", 380 + school, uid % 1_000_000),
                email: Some(pupil_email(&forename, &surname, uid, school)),
                forename,
                preferred_forename: None,
                middle_names: None,
                surname: surname.clone(),
                gender: "F",
                date_of_birth: chrono::NaiveDate::from_ymd_opt(2015, 10, 1).unwrap(),
                year: 7,
                registration,
                house,
                status: EnrolmentStatus::OnRoll,
                start_date: academic_year_start(),
                leaving_date: None,
                admission: None,
                stamp: Stamp::new(rev, at),
            },
        );
        sch.contacts.insert(
            cuid,
            Contact {
                uid: cuid,
                mis_id: format!("{}", 50_000 + cuid),
                title: "Mrs".into(),
                forename: cforename,
                surname,
                email: None,
                phone: format!("07700 9{:05}", cuid % 100_000),
                stamp: Stamp::new(rev, at),
            },
        );
        sch.link(
            uid,
            cuid,
            ContactLink {
                relationship: "Mother".into(),
                priority: 1,
                contact_type: ContactType::Primary,
                parental_responsibility: true,
            },
        );
        Ok(MutationOutcome {
            revision: rev,
            pupil: uid,
            groups,
        })
    }
}
