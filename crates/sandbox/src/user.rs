//! USER resolution as docker does it: `name`, `uid`, `uid:gid`, `name:group`, through the rootfs's
//! /etc/passwd and /etc/group, with supplementary groups from /etc/group.

use serde::{Deserialize, Serialize};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory from passwd (for HOME when the image does not set it).
    pub home: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves a USER value against the contents of the rootfs's /etc/passwd and /etc/group.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "root" } else { u };
    let (uid, mut gid, name, home) = match u.parse::<u32>() {
        Ok(uid) => match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (
                uid,
                e.gid,
                Some(e.name.to_string()),
                Some(e.home.to_string()),
            ),
            None => (uid, 0, None, None),
        },
        Err(_) => match passwd_entries(passwd).find(|e| e.name == u) {
            Some(e) => (
                e.uid,
                e.gid,
                Some(e.name.to_string()),
                Some(e.home.to_string()),
            ),
            None => return Err(UserError::UnknownUser(u.to_string())),
        },
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
        };
    }
    // Supplementary groups: only when the group was not given explicitly (docker's behaviour).
    let mut groups = Vec::new();
    if g.is_none() {
        if let Some(n) = &name {
            for (_, id, members) in group_entries(group) {
                if members.contains(&n.as_str()) && id != gid && !groups.contains(&id) {
                    groups.push(id);
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        groups,
        home: home.filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nnode:x:1000:\nstaff:x:50:node\naudio:x:29:node,root\n";

    #[test]
    fn docker_rules() {
        assert_eq!(
            resolve_user("node", PASSWD, GROUP).unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                groups: vec![50, 29],
                home: Some("/home/node".into())
            }
        );
        assert_eq!(resolve_user("1000", PASSWD, GROUP).unwrap().gid, 1000);
        assert_eq!(
            resolve_user("4242", PASSWD, GROUP).unwrap(),
            User {
                uid: 4242,
                gid: 0,
                groups: vec![],
                home: None
            }
        );
        assert_eq!(
            resolve_user("65534:65534", PASSWD, GROUP).unwrap().gid,
            65534
        );
        let u = resolve_user("node:staff", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.groups.len()), (1000, 50, 0));
        assert_eq!(
            resolve_user("ghost", PASSWD, GROUP).unwrap_err(),
            UserError::UnknownUser("ghost".into())
        );
        assert_eq!(
            resolve_user("node:ghosts", PASSWD, GROUP).unwrap_err(),
            UserError::UnknownGroup("ghosts".into())
        );
        assert_eq!(resolve_user("", PASSWD, GROUP).unwrap().uid, 0);
    }
}
