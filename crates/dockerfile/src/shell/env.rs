//! Variable lookup for word expansion: the `Env` trait and its implementations for common containers.

use std::collections::{BTreeMap, HashMap};

/// A source of variable values. Lookups are case-sensitive (Linux semantics).
///
/// `None` means the variable is unset; `Some("")` means it is set but empty.
pub trait Env {
    /// The value of `name`, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<&str>;
}

/// An ordered list of `(name, value)` pairs: when a name repeats, the last entry wins
/// (as BuildKit's `EnvsFromSlice`).
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// A list of `KEY=VALUE` strings (docker's `Env` format). An entry without `=` defines the
/// name with an empty value; when a name repeats, the last entry wins.
impl Env for [String] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            (k == name).then_some(v)
        })
    }
}

impl Env for Vec<String> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<V: AsRef<str>> Env for BTreeMap<String, V> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<V: AsRef<str>, S: std::hash::BuildHasher> Env for HashMap<String, V, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_duplicate_wins_and_missing_equals_is_empty() {
        let list: Vec<String> = vec!["foo=bar".into(), "car".into(), "foo=baz".into()];
        assert_eq!(list.get("foo"), Some("baz"));
        assert_eq!(list.get("car"), Some(""));
        assert_eq!(list.get("nope"), None);
        let pairs = vec![("A", "1"), ("A", "2")];
        assert_eq!(pairs.get("A"), Some("2"));
        assert_eq!(pairs.get("a"), None);
    }
}
