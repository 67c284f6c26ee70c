//! Deterministic synthetic schools: the one source every provider fake
//! renders from.
//!
//! Everything is drawn from a ChaCha stream seeded by the config seed, and
//! all collections are ordered maps, so the same seed and size give
//! byte-identical data and byte-identical API responses. The data carries
//! the mess real schools have: missing and duplicate emails, an unnamed
//! class, pupils with seven contacts, non-ASCII and hyphenated names,
//! applicants and leavers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rostersync_model::{ContactType, EnrolmentStatus, GroupKind};

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub schools: usize,
    pub pupils_per_school: usize,
}

const FIRST_NAMES: &[&str] = &[
    "Oliver",
    "Amelia",
    "Zoë",
    "Siobhán",
    "Mohammed",
    "Ava",
    "Noah",
    "Isla",
    "Chloé",
    "Jack",
    "Freya",
    "Aoife",
    "Léa",
    "Harry",
    "Maja",
    "Ibrahim",
    "Grace",
    "Seán",
    "Anaïs",
    "Leo",
    "Niamh",
    "Oscar",
    "Priya",
    "Thomas",
    "Ella",
    "Bartłomiej",
    "Mia",
    "Yusuf",
    "Ruby",
    "Jakub",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "O'Brien-Smith",
    "Nguyễn",
    "Williams",
    "Taylor",
    "Brown",
    "Ó Súilleabháin",
    "Davies",
    "Evans",
    "Kowalski",
    "Patel",
    "Wilson",
    "Thomas",
    "Müller",
    "Roberts",
    "Khan",
    "Johnson",
    "Lewis",
    "Walker",
    "García",
    "Wright",
    "Green",
    "Hall",
    "Jørgensen",
];
pub(crate) const SUBJECTS: &[(&str, &str)] = &[
    ("Mathematics", "Ma"),
    ("English", "En"),
    ("Science", "Sc"),
    ("History", "Hi"),
    ("Geography", "Gg"),
    ("French", "Fr"),
    ("Art", "Ar"),
    ("Physical Education", "PE"),
];
const HOUSES: &[&str] = &["Austen", "Brontë", "Darwin", "Turing"];
pub(crate) const RELATIONSHIPS: &[&str] = &[
    "Mother",
    "Father",
    "Step Mother",
    "Grandparent",
    "Aunt",
    "Uncle",
    "Carer",
    "Other Family Member",
];
pub(crate) const STAFF_TITLES: &[&str] = &["Mr", "Mrs", "Ms", "Miss", "Dr", "Mx"];

/// A pupil: on roll, an applicant (prospective) or a leaver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Student {
    /// Unique across the trust; every provider derives its own id from it.
    pub uid: u64,
    pub mis_id: String,
    pub upn: String,
    pub forename: String,
    pub preferred_forename: Option<String>,
    pub middle_names: Option<String>,
    pub surname: String,
    pub gender: &'static str,
    pub date_of_birth: NaiveDate,
    pub email: Option<String>,
    /// National curriculum year, 7..=13.
    pub year: u8,
    /// uid of the registration group (`None` for applicants).
    pub registration: Option<u64>,
    pub house: Option<u64>,
    pub status: EnrolmentStatus,
    pub start_date: NaiveDate,
    pub leaving_date: Option<NaiveDate>,
    pub admission: Option<Admission>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub application_active: bool,
    pub admission_date: NaiveDate,
    pub admission_status: String,
    pub intake: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub uid: u64,
    pub mis_id: String,
    pub title: String,
    pub forename: String,
    pub surname: String,
    pub email: Option<String>,
    pub date_of_birth: NaiveDate,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub uid: u64,
    pub mis_id: String,
    pub title: String,
    pub forename: String,
    pub surname: String,
    pub email: Option<String>,
    pub phone: String,
    pub stamp: Stamp,
}

/// A student↔contact link; the relationship is per student, not per contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLink {
    pub relationship: String,
    pub priority: u32,
    pub contact_type: ContactType,
    pub parental_responsibility: bool,
}

/// A class, registration group, year group or house.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub uid: u64,
    pub kind: GroupKind,
    /// `None` models the unnamed class schools really have.
    pub name: Option<String>,
    pub code: String,
    pub subject: Option<String>,
    pub year: Option<u8>,
    pub teachers: BTreeSet<u64>,
    pub students: BTreeSet<u64>,
    /// Pupils who left this group: uid → revision they left at. Feeds
    /// membership deletions in the change feeds.
    pub departed: BTreeMap<u64, u64>,
    pub stamp: Stamp,
}

/// When a record last changed and whether it is gone; the change feeds of
/// every provider are computed from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub created_rev: u64,
    pub updated_rev: u64,
    pub updated_at: DateTime<Utc>,
    pub deleted: Option<(u64, DateTime<Utc>)>,
}

impl Stamp {
    pub fn new(rev: u64, at: DateTime<Utc>) -> Self {
        Self {
            created_rev: rev,
            updated_rev: rev,
            updated_at: at,
            deleted: None,
        }
    }
    pub fn touch(&mut self, rev: u64, at: DateTime<Utc>) {
        self.updated_rev = rev;
        self.updated_at = at;
    }
    pub fn delete(&mut self, rev: u64, at: DateTime<Utc>) {
        self.touch(rev, at);
        self.deleted = Some((rev, at));
    }
    pub fn live(&self) -> bool {
        self.deleted.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub index: usize,
    pub uid: u64,
    pub name: String,
    /// DfE establishment number (LA + estab), what Xporter calls `estab`.
    pub estab: String,
    pub urn: String,
    pub students: BTreeMap<u64, Student>,
    pub staff: BTreeMap<u64, Staff>,
    pub contacts: BTreeMap<u64, Contact>,
    pub groups: BTreeMap<u64, Group>,
    /// (student uid, contact uid) → link. Removed with the student.
    pub links: BTreeMap<(u64, u64), ContactLink>,
    /// The same links keyed (contact, student), so a contact's pupils are
    /// found without scanning every link.
    pub links_by_contact: BTreeSet<(u64, u64)>,
}

impl School {
    pub fn live_students(&self) -> impl Iterator<Item = &Student> {
        self.students.values().filter(|s| s.stamp.live())
    }
    pub fn live_staff(&self) -> impl Iterator<Item = &Staff> {
        self.staff.values().filter(|s| s.stamp.live())
    }
    pub fn live_contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values().filter(|s| s.stamp.live())
    }
    pub fn live_groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().filter(|s| s.stamp.live())
    }
    /// Contacts of a live student, by priority.
    pub fn contacts_of(&self, student: u64) -> Vec<(&Contact, &ContactLink)> {
        let mut out: Vec<_> = self
            .links
            .range((student, 0)..=(student, u64::MAX))
            .filter_map(|(&(_, c), link)| {
                let contact = self.contacts.get(&c)?;
                contact.stamp.live().then_some((contact, link))
            })
            .collect();
        out.sort_by_key(|(c, l)| (l.priority, c.uid));
        out
    }
    /// Students a contact is linked to.
    pub fn students_of(&self, contact: u64) -> Vec<(&Student, &ContactLink)> {
        self.links_by_contact
            .range((contact, 0)..=(contact, u64::MAX))
            .filter_map(|&(c, s)| {
                let st = self.students.get(&s)?;
                let link = self.links.get(&(s, c))?;
                st.stamp.live().then_some((st, link))
            })
            .collect()
    }
    /// Links a pupil to a contact.
    pub fn link(&mut self, student: u64, contact: u64, link: ContactLink) {
        self.links.insert((student, contact), link);
        self.links_by_contact.insert((contact, student));
    }
    /// Groups of a kind a student belongs to.
    pub fn groups_of(&self, student: u64) -> impl Iterator<Item = &Group> {
        self.live_groups()
            .filter(move |g| g.students.contains(&student))
    }
    pub fn year_group(&self, year: u8) -> Option<&Group> {
        self.live_groups()
            .find(|g| g.kind == GroupKind::Year && g.year == Some(year))
    }
    pub fn group(&self, uid: Option<u64>) -> Option<&Group> {
        uid.and_then(|u| self.groups.get(&u))
    }
}

/// The whole synthetic trust plus the logical clock its changes run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    pub seed: u64,
    pub trust_name: String,
    pub schools: Vec<School>,
    /// Revision of the last change; 1 is the initial load.
    pub revision: u64,
    /// The sandbox clock: fixed at generation, advanced by each mutation,
    /// so timestamps are deterministic too.
    pub now: DateTime<Utc>,
    pub next_uid: u64,
    pub rng: ChaCha8Rng,
}

/// The instant the generated data was "last synced" at the MIS.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 7, 30, 0).unwrap()
}

/// The academic year the data describes starts on this date.
pub fn academic_year_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()
}

fn pick<'a, R: Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// An email address from a name, ASCII-folded the way MIS exports do.
fn email_for(forename: &str, surname: &str, n: u64, domain: &str) -> String {
    let fold = |s: &str| -> String {
        s.chars()
            .filter_map(|c| match c {
                'ë' | 'é' | 'è' | 'ê' => Some('e'),
                'á' | 'à' | 'ą' => Some('a'),
                'ï' | 'í' => Some('i'),
                'ó' | 'ø' | 'ö' | 'Ó' => Some('o'),
                'ü' | 'ú' => Some('u'),
                'ễ' => Some('e'),
                'ł' => Some('l'),
                c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    };
    format!("{}.{}{}@{}", fold(forename), fold(surname), n, domain)
}

impl World {
    /// Generates the trust. Same seed and size → identical world.
    pub fn generate(seed: u64, size: Size) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let at = epoch();
        let mut next_uid = 1000;
        let mut uid = || {
            next_uid += 1;
            next_uid
        };
        let mut schools = Vec::new();
        for index in 0..size.schools {
            let domain = format!("school{}.example.org", index + 1);
            let mut school = School {
                index,
                uid: uid(),
                name: format!("{} Academy", pick(&mut rng, HOUSES)),
                estab: format!("{}{:04}", 380 + index, 4000 + index),
                urn: format!("{}", 137_000 + index * 7),
                students: BTreeMap::new(),
                staff: BTreeMap::new(),
                contacts: BTreeMap::new(),
                groups: BTreeMap::new(),
                links: BTreeMap::new(),
                links_by_contact: BTreeSet::new(),
            };
            school.name = format!("{} {}", school.name, index + 1);
            // Staff: one per ~15 pupils, at least 8 (subject teachers + tutors).
            let staff_count = (size.pupils_per_school / 15).max(8);
            for n in 0..staff_count {
                let u = uid();
                let forename = pick(&mut rng, FIRST_NAMES).to_string();
                let surname = pick(&mut rng, LAST_NAMES).to_string();
                let email = (rng.random_range(0..20) != 0)
                    .then(|| email_for(&forename, &surname, u, &domain));
                school.staff.insert(
                    u,
                    Staff {
                        uid: u,
                        mis_id: format!("{}", 5000 + n),
                        title: pick(&mut rng, STAFF_TITLES).to_string(),
                        forename,
                        surname,
                        email,
                        date_of_birth: NaiveDate::from_ymd_opt(
                            1965 + rng.random_range(0..35),
                            rng.random_range(1..=12),
                            rng.random_range(1..=28),
                        )
                        .unwrap(),
                        stamp: Stamp::new(1, at),
                    },
                );
            }
            let staff_ids: Vec<u64> = school.staff.keys().copied().collect();
            // Year groups 7..=11, two registration groups each, houses.
            let years: Vec<u8> = (7..=11).collect();
            let mut year_uids = BTreeMap::new();
            let mut reg_uids: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
            for &y in &years {
                let u = uid();
                year_uids.insert(y, u);
                school.groups.insert(
                    u,
                    Group {
                        uid: u,
                        kind: GroupKind::Year,
                        name: Some(format!("Year {y}")),
                        code: format!("Y{y}"),
                        subject: None,
                        year: Some(y),
                        teachers: BTreeSet::new(),
                        students: BTreeSet::new(),
                        departed: BTreeMap::new(),
                        stamp: Stamp::new(1, at),
                    },
                );
                for form in ["A", "B"] {
                    let u = uid();
                    reg_uids.entry(y).or_default().push(u);
                    let tutor = staff_ids[rng.random_range(0..staff_ids.len())];
                    school.groups.insert(
                        u,
                        Group {
                            uid: u,
                            kind: GroupKind::Registration,
                            name: Some(format!("{y}{form}")),
                            code: format!("{y}{form}"),
                            subject: None,
                            year: Some(y),
                            teachers: BTreeSet::from([tutor]),
                            students: BTreeSet::new(),
                            departed: BTreeMap::new(),
                            stamp: Stamp::new(1, at),
                        },
                    );
                }
            }
            let mut house_uids = Vec::new();
            for h in HOUSES {
                let u = uid();
                house_uids.push(u);
                school.groups.insert(
                    u,
                    Group {
                        uid: u,
                        kind: GroupKind::House,
                        name: Some((*h).to_string()),
                        code: h[..2].to_string(),
                        subject: None,
                        year: None,
                        teachers: BTreeSet::new(),
                        students: BTreeSet::new(),
                        departed: BTreeMap::new(),
                        stamp: Stamp::new(1, at),
                    },
                );
            }
            // Teaching classes: per year, per subject, sets of ~one per registration group.
            let mut class_uids: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
            let mut first_class = true;
            for &y in &years {
                for (subject, code) in SUBJECTS {
                    for set in 1..=2 {
                        let u = uid();
                        class_uids.entry(y).or_default().push(u);
                        let teacher = staff_ids[rng.random_range(0..staff_ids.len())];
                        let name = format!("{y}{code}{set}");
                        school.groups.insert(
                            u,
                            Group {
                                uid: u,
                                kind: GroupKind::Class,
                                // The unnamed class real MIS data has.
                                name: (!first_class).then(|| name.clone()),
                                code: name,
                                subject: Some((*subject).to_string()),
                                year: Some(y),
                                teachers: BTreeSet::from([teacher]),
                                students: BTreeSet::new(),
                                departed: BTreeMap::new(),
                                stamp: Stamp::new(1, at),
                            },
                        );
                        first_class = false;
                    }
                }
            }
            // Pupils.
            let mut last_email: Option<String> = None;
            for n in 0..size.pupils_per_school {
                let u = uid();
                let forename = pick(&mut rng, FIRST_NAMES).to_string();
                let surname = pick(&mut rng, LAST_NAMES).to_string();
                let year = years[rng.random_range(0..years.len())];
                let roll: u32 = rng.random_range(0..100);
                let status = match roll {
                    0..=2 => EnrolmentStatus::Prospective,
                    3..=5 => EnrolmentStatus::Left,
                    _ => EnrolmentStatus::OnRoll,
                };
                let email_roll: u32 = rng.random_range(0..100);
                let email = match email_roll {
                    0..=5 => None,
                    6..=7 if last_email.is_some() => last_email.clone(),
                    _ => Some(email_for(&forename, &surname, u, &domain)),
                };
                if email.is_some() {
                    last_email.clone_from(&email);
                }
                let dob = NaiveDate::from_ymd_opt(
                    2026 - 11 - i32::from(year - 7) - 1,
                    rng.random_range(9..=12),
                    rng.random_range(1..=28),
                )
                .unwrap();
                let preferred =
                    (rng.random_range(0..10) == 0).then(|| pick(&mut rng, FIRST_NAMES).to_string());
                let middle =
                    (rng.random_range(0..3) == 0).then(|| pick(&mut rng, FIRST_NAMES).to_string());
                let regs = &reg_uids[&year];
                let registration = regs[rng.random_range(0..regs.len())];
                let house = house_uids[rng.random_range(0..house_uids.len())];
                let (registration, house, start_date, leaving_date, admission) = match status {
                    EnrolmentStatus::Prospective => (
                        None,
                        None,
                        NaiveDate::from_ymd_opt(2027, 9, 1).unwrap(),
                        None,
                        Some(Admission {
                            application_active: rng.random_range(0..5) != 0,
                            admission_date: NaiveDate::from_ymd_opt(2027, 9, 1).unwrap(),
                            admission_status: ["Offered", "Accepted", "Applied"]
                                [rng.random_range(0..3)]
                            .to_string(),
                            intake: "Year 7 Sept 2027".to_string(),
                        }),
                    ),
                    EnrolmentStatus::Left => (
                        Some(registration),
                        Some(house),
                        NaiveDate::from_ymd_opt(2021, 9, 1).unwrap(),
                        Some(academic_year_start() - Duration::days(rng.random_range(1..700))),
                        None,
                    ),
                    EnrolmentStatus::OnRoll => (
                        Some(registration),
                        Some(house),
                        NaiveDate::from_ymd_opt(2026 - i64::from(year - 7) as i32, 9, 1).unwrap(),
                        None,
                        None,
                    ),
                };
                let student = Student {
                    uid: u,
                    mis_id: format!("{}", 10_000 + n),
                    upn: format!(
                        "{}{:03}{:04}{}",
                        ['A', 'B', 'H', 'K'][index % 4],
                        380 + index,
                        2000 + n,
                        (b'A' + (n % 26) as u8) as char
                    ),
                    forename,
                    preferred_forename: preferred,
                    middle_names: middle,
                    surname: surname.clone(),
                    gender: ["M", "F"][rng.random_range(0..2)],
                    date_of_birth: dob,
                    email,
                    year,
                    registration,
                    house,
                    status,
                    start_date,
                    leaving_date,
                    admission,
                    stamp: Stamp::new(1, at),
                };
                if status == EnrolmentStatus::OnRoll {
                    for g in [Some(year_uids[&year]), registration, house]
                        .into_iter()
                        .flatten()
                    {
                        school.groups.get_mut(&g).unwrap().students.insert(u);
                    }
                    // One set per subject.
                    let classes = &class_uids[&year];
                    for pair in classes.chunks(2) {
                        let c = pair[rng.random_range(0..pair.len())];
                        school.groups.get_mut(&c).unwrap().students.insert(u);
                    }
                }
                // Contacts: usually 1–3, every 40th pupil has 7 (a hold case).
                let contact_count = if n % 40 == 39 {
                    7
                } else {
                    rng.random_range(1..=3)
                };
                for k in 0..contact_count {
                    let cu = uid();
                    let relationship = if k == 0 {
                        ["Mother", "Father"][rng.random_range(0..2)].to_string()
                    } else {
                        pick(&mut rng, RELATIONSHIPS).to_string()
                    };
                    let cforename = pick(&mut rng, FIRST_NAMES).to_string();
                    let csurname = if k < 2 {
                        surname.clone()
                    } else {
                        pick(&mut rng, LAST_NAMES).to_string()
                    };
                    let cemail = (rng.random_range(0..10) != 0)
                        .then(|| email_for(&cforename, &csurname, cu, "mail.example.com"));
                    school.contacts.insert(
                        cu,
                        Contact {
                            uid: cu,
                            mis_id: format!("{}", 50_000 + cu),
                            title: if relationship == "Mother" {
                                "Mrs".into()
                            } else if relationship == "Father" {
                                "Mr".into()
                            } else {
                                pick(&mut rng, STAFF_TITLES).to_string()
                            },
                            forename: cforename,
                            surname: csurname,
                            email: cemail,
                            phone: format!("07700 9{:05}", cu % 100_000),
                            stamp: Stamp::new(1, at),
                        },
                    );
                    let contact_type = match k {
                        0 => ContactType::Primary,
                        1 => ContactType::Secondary,
                        _ => ContactType::Emergency,
                    };
                    school.link(
                        u,
                        cu,
                        ContactLink {
                            parental_responsibility: k < 2,
                            relationship,
                            priority: k as u32 + 1,
                            contact_type,
                        },
                    );
                }
                school.students.insert(u, student);
            }
            schools.push(school);
        }
        World {
            seed,
            trust_name: "Northern Lights Academy Trust".into(),
            schools,
            revision: 1,
            now: at,
            next_uid,
            rng,
        }
    }

    pub fn fresh_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }
}

/// Names for new pupils created by mutations.
pub(crate) fn random_name<R: Rng>(rng: &mut R) -> (String, String) {
    (
        pick(rng, FIRST_NAMES).to_string(),
        pick(rng, LAST_NAMES).to_string(),
    )
}

pub(crate) fn pupil_email(forename: &str, surname: &str, uid: u64, school: usize) -> String {
    email_for(
        forename,
        surname,
        uid,
        &format!("school{}.example.org", school + 1),
    )
}
