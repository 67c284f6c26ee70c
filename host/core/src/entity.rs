//! The identity of a roster object (its kind and key) and the hash of its
//! content, which is all the diff needs to know about an unchanged record.

pub use rostersync_model::EntityKind;
use rostersync_model::{Record, Removal};
use sha2::{Digest, Sha256};

/// An object's key within its kind. Compound keys (membership: group and
/// person; relationship: student and contact) are joined with U+001F, the
/// unit separator, which the runtime never lets into an id.
pub type EntityKey = String;

const KEY_SEPARATOR: char = '\u{1f}';

fn compound(a: &str, b: &str) -> EntityKey {
    format!("{a}{KEY_SEPARATOR}{b}")
}

/// The two ids a compound key (membership, relationship) joins, in order.
pub fn split_compound(key: &str) -> Option<(&str, &str)> {
    key.split_once(KEY_SEPARATOR)
}

/// The kind and key of a record that is an object (not a removal).
pub fn identity(record: &Record) -> Option<(EntityKind, EntityKey)> {
    Some(match record {
        Record::Person(p) => (EntityKind::Person, p.id.clone()),
        Record::Group(g) => (EntityKind::Group, g.id.clone()),
        Record::Membership(m) => (EntityKind::Membership, compound(&m.group, &m.person)),
        Record::Relationship(r) => (EntityKind::Relationship, compound(&r.student, &r.contact)),
        Record::Removed(_) => return None,
    })
}

/// The kind and key a removal names.
pub fn removal_identity(removal: &Removal) -> (EntityKind, EntityKey) {
    match removal {
        Removal::Person(id) => (EntityKind::Person, id.clone()),
        Removal::Group(id) => (EntityKind::Group, id.clone()),
        Removal::Membership(k) => (EntityKind::Membership, compound(&k.group, &k.person)),
        Removal::Relationship(k) => (EntityKind::Relationship, compound(&k.student, &k.contact)),
    }
}

/// A record's content hash: 16 bytes of SHA-256 over its canonical JSON.
/// Stable across processes and Rust versions, unlike `std::hash`, because
/// it is stored and compared on later runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ContentHash(pub [u8; 16]);

impl ContentHash {
    /// Free attributes count as a set: a connector that lists them in
    /// another order has not changed the person.
    pub fn of(record: &Record) -> Self {
        match record {
            Record::Person(person) if !person.attributes.is_sorted() => {
                let mut person = person.clone();
                person.attributes.sort();
                Self::of_canonical(&Record::Person(person))
            }
            _ => Self::of_canonical(record),
        }
    }

    fn of_canonical(record: &Record) -> Self {
        let json = serde_json::to_vec(record).expect("records serialise");
        let digest = Sha256::digest(&json);
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        ContentHash(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_model::{Attribute, Person, Role};

    const PINNED: &str = "e3dabdcf898f42cc2e1e496a96669cbd";

    fn hex(hash: ContentHash) -> String {
        hash.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hashes_are_stable_and_sensitive() {
        let mut zoe = Person::new("S1", Role::Student);
        zoe.first_name = Some("Zoë".into());
        let record = Record::Person(zoe.clone());
        // A fixed value: if this changes, every stored hash would look
        // changed and every record would be rewritten on the next run.
        assert_eq!(hex(ContentHash::of(&record)), PINNED);
        zoe.first_name = Some("Zoe".into());
        assert_ne!(
            ContentHash::of(&record),
            ContentHash::of(&Record::Person(zoe))
        );
    }

    #[test]
    fn attribute_order_does_not_change_the_hash() {
        let attribute = |name: &str, value: &str| Attribute {
            name: name.into(),
            value: value.into(),
        };
        let mut zoe = Person::new("S1", Role::Student);
        zoe.attributes = vec![attribute("house", "Red"), attribute("form", "7A")];
        let listed = ContentHash::of(&Record::Person(zoe.clone()));
        zoe.attributes.reverse();
        assert_eq!(listed, ContentHash::of(&Record::Person(zoe.clone())));
        zoe.attributes[0].value = "7B".into();
        assert_ne!(listed, ContentHash::of(&Record::Person(zoe)));
    }

    #[test]
    fn compound_keys_cannot_collide() {
        let a = compound("G1", "P12");
        let b = compound("G1P", "12");
        assert_ne!(a, b);
    }
}
