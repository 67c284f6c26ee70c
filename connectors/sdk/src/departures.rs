//! Removals a delta read can infer from a change feed that re-sends changed
//! records whole but never says who left.
//!
//! Such feeds report a changed group with its complete current member list
//! (or a changed pupil with all its current contacts). When the same delta
//! also touched a member (changed or deleted it), and the owner's current
//! list lacks it, the pair is known to be gone. Most such pairs never
//! existed; that is harmless, because the host applies a removal only to
//! what it holds.

use std::collections::{BTreeMap, BTreeSet};

/// Owners' complete current lists and the members a delta touched.
#[derive(Debug, Default)]
pub struct Departures {
    lists: BTreeMap<String, BTreeSet<String>>,
    touched: BTreeSet<String>,
}

impl Departures {
    /// `owner`'s complete current list; a later list for the same owner
    /// replaces an earlier one, as a later event supersedes an earlier one.
    pub fn list(&mut self, owner: impl Into<String>, members: impl IntoIterator<Item = String>) {
        self.lists
            .insert(owner.into(), members.into_iter().collect());
    }

    /// A member the delta changed or deleted.
    pub fn touch(&mut self, member: impl Into<String>) {
        self.touched.insert(member.into());
    }

    /// Every (owner, member) pair of a listed owner and a touched member
    /// that the owner's current list does not hold.
    pub fn gone(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lists.iter().flat_map(|(owner, members)| {
            self.touched
                .difference(members)
                .map(move |member| (owner.as_str(), member.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Departures;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_touched_members_missing_from_a_list_are_gone() {
        let mut departures = Departures::default();
        departures.list("maths", ids(&["ann", "bob"]));
        departures.list("art", ids(&["cat"]));
        departures.touch("bob");
        departures.touch("cat");
        let gone: Vec<_> = departures.gone().collect();
        assert_eq!(gone, [("art", "bob"), ("maths", "cat")]);
    }

    #[test]
    fn a_later_list_replaces_an_earlier_one() {
        let mut departures = Departures::default();
        departures.list("maths", ids(&[]));
        departures.list("maths", ids(&["ann"]));
        departures.touch("ann");
        assert_eq!(departures.gone().count(), 0);
    }

    #[test]
    fn nothing_is_gone_without_lists_or_touches() {
        let mut departures = Departures::default();
        departures.touch("ann");
        assert_eq!(departures.gone().count(), 0);
        let mut departures = Departures::default();
        departures.list("maths", ids(&[]));
        assert_eq!(departures.gone().count(), 0);
    }
}
