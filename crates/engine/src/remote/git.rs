//! Git sources of ADD, as BuildKit's git source handles them with the `git` binary: the reference
//! syntax (`URL#ref:subdir`, `?ref=&subdir=&tag=&branch=&checksum=&keep-git-dir=&submodules=&mtime=`,
//! scp-style `user@host:path`), the ref resolved with `git ls-remote` (branches win over tags, annotated
//! tags peeled), the cache key from the commit, and the checkout (umask 022, no `.git` unless
//! `--keep-git-dir`, a subdirectory moved up, mtimes the checkout's own or, with `mtime=commit`, the
//! commit's).

use crate::EngineError;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A parsed git source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitRef {
    /// What `git` is given (the URL without fragment and query).
    pub remote: String,
    /// A branch, tag, full ref or commit; empty: the remote's default branch.
    pub reference: String,
    /// A directory inside the repository (cleaned, relative); empty: the whole tree.
    pub subdir: String,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub submodules: bool,
    /// `mtime=commit`: every file gets the commit's time instead of the checkout's.
    pub mtime_commit: bool,
}

/// True when `src` is a git source for BuildKit's Dockerfile frontend (even one whose options are
/// invalid: [`resolve`] reports those).
pub(crate) fn is_git(src: &str) -> bool {
    !matches!(parse(src), Ok(None))
}

fn has_scheme(src: &str) -> Option<&str> {
    let i = src.find("://")?;
    let scheme = &src[..i];
    (!scheme.is_empty() && scheme.bytes().all(|c| c.is_ascii_alphanumeric())).then_some(scheme)
}

/// `user@host:path?query#fragment` (BuildKit's gitSSHRegex).
fn scp_style(src: &str) -> Option<(&str, &str)> {
    let (user, rest) = src.split_once('@')?;
    let (host, path) = rest.split_once(':')?;
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
    (user_ok && host_ok).then_some((&src[..user.len() + 1 + host.len()], path))
}

/// Parses a git source. `Ok(None)`: not a git source (a local path or a plain http URL).
pub(crate) fn parse(src: &str) -> Result<Option<GitRef>, String> {
    if src.starts_with("./") || src.starts_with("../") {
        return Ok(None);
    }
    // Split off the fragment, then the query (before the fragment).
    let (base, fragment) = match src.split_once('#') {
        Some((b, f)) => (b, f),
        None => (src, ""),
    };
    let (remote, query) = match base.split_once('?') {
        Some((r, q)) => (r, q),
        None => (base, ""),
    };
    if let Some(scheme) = has_scheme(src) {
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {
                // An http(s) URL is a git source only when its path ends in `.git`.
                let after = &remote[scheme.len() + 3..];
                let path = after.find('/').map(|i| &after[i..]).unwrap_or("");
                if !super::percent_decode(path).ends_with(".git") {
                    return Ok(None);
                }
            }
            "git" | "ssh" => {}
            _ => return Ok(None),
        }
    } else if scp_style(src).is_none() {
        return Ok(None);
    }
    let (reference, subdir) = match fragment.split_once(':') {
        Some((r, s)) => (r.to_string(), crate::context::clean_rel(s)),
        None => (fragment.to_string(), String::new()),
    };
    let mut r = GitRef {
        remote: remote.to_string(),
        reference,
        subdir,
        checksum: None,
        keep_git_dir: None,
        submodules: true,
        mtime_commit: false,
    };
    r.load_query(query)?;
    Ok(Some(r))
}

impl GitRef {
    /// BuildKit's `loadQuery`.
    fn load_query(&mut self, query: &str) -> Result<(), String> {
        if query.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        let (mut tag, mut branch) = (String::new(), String::new());
        let boolean = |k: &str, v: &str| -> Result<bool, String> {
            match v {
                "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                _ => Err(format!("invalid {k} value: {v:?}")),
            }
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = super::percent_decode(&k.replace('+', " "));
            let v = super::percent_decode(&v.replace('+', " "));
            if !seen.insert(k.clone()) {
                return Err(format!("query {k:?} has multiple values"));
            }
            if v.is_empty() && !matches!(k.as_str(), "submodules" | "keep-git-dir") {
                return Err(format!("query {k:?} has no value"));
            }
            match k.as_str() {
                "ref" => {
                    if !self.reference.is_empty() && self.reference != v {
                        return Err(format!("ref conflicts: {:?} vs {v:?}", self.reference));
                    }
                    self.reference = v;
                }
                "tag" => tag = v,
                "branch" => branch = v,
                "subdir" => {
                    let v = crate::context::clean_rel(&v);
                    if !self.subdir.is_empty() && self.subdir != v {
                        return Err(format!("subdir conflicts: {:?} vs {v:?}", self.subdir));
                    }
                    self.subdir = v;
                }
                "checksum" | "commit" => self.checksum = Some(v),
                "keep-git-dir" => self.keep_git_dir = Some(boolean(&k, &v)?),
                "submodules" => self.submodules = boolean(&k, &v)?,
                "mtime" => match v.as_str() {
                    "checkout" => self.mtime_commit = false,
                    "commit" => self.mtime_commit = true,
                    _ => {
                        return Err(format!(
                            "invalid mtime value: {v:?} (must be \"checkout\" or \"commit\")"
                        ))
                    }
                },
                _ => return Err(format!("unexpected query {k:?}")),
            }
        }
        if !tag.is_empty() {
            if !tag.starts_with("refs/tags/") {
                tag = format!("refs/tags/{tag}");
            }
            if !self.reference.is_empty() && self.reference != tag {
                return Err(format!("ref conflicts: {:?} vs {tag:?}", self.reference));
            }
            self.reference = tag.clone();
        }
        if !branch.is_empty() {
            if !tag.is_empty() {
                return Err("branch conflicts with tag".into());
            }
            if !branch.starts_with("refs/heads/") {
                branch = format!("refs/heads/{branch}");
            }
            if !self.reference.is_empty() && self.reference != branch {
                return Err(format!("ref conflicts: {:?} vs {branch:?}", self.reference));
            }
            self.reference = branch;
        }
        Ok(())
    }
}

/// A git source with its ref resolved to a commit.
#[derive(Debug)]
pub(crate) struct Resolved {
    git: GitRef,
    keep: bool,
    /// The full ref `ls-remote` matched (`refs/heads/main`), or the commit when one was named.
    used_ref: String,
    /// What the ref points to: a commit, or an annotated tag object.
    sha: String,
    /// The commit checked out (the tag peeled).
    commit: String,
}

pub(crate) fn is_commit_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64)
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Resolves `src` (a git source) to a commit with `git ls-remote`, checking `--checksum`.
pub(crate) fn resolve(
    src: &str,
    checksum: Option<&str>,
    keep_git_dir: bool,
) -> Result<Resolved, EngineError> {
    let err = |m: String| EngineError::msg(format!("ADD {}: {m}", redact(src)));
    let mut g = parse(src)
        .map_err(err)?
        .ok_or_else(|| err("not a git source".into()))?;
    if let Some(c) = checksum {
        if let Some(q) = &g.checksum {
            if q != c {
                return Err(err(format!("checksum mismatch {c:?} != {q:?}")));
            }
        }
        g.checksum = Some(c.to_string());
    }
    if let Some(c) = &g.checksum {
        if c.is_empty() || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!(
                "invalid checksum {c} for Git URL, expected hex commit hash"
            )));
        }
    }
    if keep_git_dir && g.keep_git_dir == Some(false) {
        return Err(err("inconsistent keep-git-dir configuration".into()));
    }
    let keep = g.keep_git_dir.unwrap_or(keep_git_dir);
    let matches = |sha: &str, c: &str| sha.starts_with(&c.to_ascii_lowercase());
    if is_commit_sha(&g.reference) {
        if let Some(c) = &g.checksum {
            if !matches(&g.reference, c) {
                return Err(err(format!(
                    "expected checksum to match {c}, got {}",
                    g.reference
                )));
            }
        }
        let r = g.reference.clone();
        return Ok(Resolved {
            git: g,
            keep,
            used_ref: r.clone(),
            sha: r.clone(),
            commit: r,
        });
    }
    let mut reference = g.reference.clone();
    if reference.is_empty() {
        reference = default_branch(&g.remote)?;
    }
    if reference.starts_with('-') {
        return Err(err(format!("invalid git ref {reference:?}")));
    }
    let out = run_git(
        &[
            "ls-remote",
            "--",
            &g.remote,
            &reference,
            &format!("{reference}^{{}}"),
        ],
        None,
    )
    .map_err(|e| EngineError::msg(format!("failed to fetch remote {}: {e}", redact(&g.remote))))?;
    let strip = |p: &str| reference.strip_prefix(p).unwrap_or(&reference).to_string();
    let partial = format!("refs/{}", strip("refs/"));
    let head = format!("refs/heads/{}", strip("refs/heads/"));
    let tag = format!("refs/tags/{}", strip("refs/tags/"));
    let peeled = format!("{tag}^{{}}");
    let (mut sha, mut head_sha, mut tag_sha, mut annotated) =
        (String::new(), String::new(), String::new(), String::new());
    let mut used = String::new();
    for line in out.lines() {
        let (s, r) = line.split_once('\t').unwrap_or((line, ""));
        if r == head {
            head_sha = s.to_string();
        } else if r == tag {
            tag_sha = s.to_string();
        } else if r == peeled {
            annotated = s.to_string();
        } else if r == partial {
            sha = s.to_string();
            used = r.to_string();
        }
    }
    // As `git checkout`, a branch wins over a tag of the same name.
    if sha.is_empty() && !head_sha.is_empty() {
        sha = head_sha;
        used = head;
    }
    if !sha.is_empty() {
        annotated.clear();
    }
    if sha.is_empty() && !tag_sha.is_empty() {
        sha = tag_sha;
        used = tag;
    }
    if sha.is_empty() {
        return Err(err(format!(
            "repository {} does not contain ref {reference}",
            redact(&g.remote)
        )));
    }
    if !is_commit_sha(&sha) {
        return Err(err(format!("invalid commit sha {sha:?}")));
    }
    if let Some(c) = &g.checksum {
        if !matches(&sha, c) && !matches(&annotated, c) {
            let got = if annotated.is_empty() {
                sha.clone()
            } else {
                format!("{sha} or {annotated}")
            };
            return Err(err(format!("expected checksum to match {c}, got {got}")));
        }
    }
    let commit = if annotated.is_empty() {
        sha.clone()
    } else {
        annotated
    };
    Ok(Resolved {
        git: g,
        keep,
        used_ref: used,
        sha,
        commit,
    })
}

fn default_branch(remote: &str) -> Result<String, EngineError> {
    let out = run_git(&["ls-remote", "--symref", "--", remote, "HEAD"], None).map_err(|e| {
        EngineError::msg(format!(
            "error fetching default branch for repository {}: {e}",
            redact(remote)
        ))
    })?;
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("refs/heads/"))
        .map(str::to_string)
        .ok_or_else(|| {
            EngineError::msg(format!(
                "could not find default branch for repository: {}",
                redact(remote)
            ))
        })
}

impl Resolved {
    /// BuildKit's `shaToCacheKey`: the commit (the tag object when `.git` is kept), the ref with
    /// `.git`, the subdirectory and the options that change the files.
    pub(crate) fn cache_key(&self) -> String {
        let mut key = if self.keep {
            self.sha.clone()
        } else {
            self.commit.clone()
        };
        if self.keep {
            key.push_str(".git");
            if !self.used_ref.is_empty() {
                key.push('#');
                key.push_str(&self.used_ref);
            }
        }
        if !self.git.subdir.is_empty() {
            key.push(':');
            key.push_str(&self.git.subdir);
        }
        if !self.git.submodules {
            key.push_str("(skip-submodules)");
        }
        if self.git.mtime_commit {
            key.push_str("(mtime=commit)");
        }
        key
    }

    /// Fetches the commit and checks its tree out into `out` (an empty directory), using `tmp` for
    /// the bare repository and, with a subdirectory, the full checkout.
    pub(crate) fn checkout(&self, out: &Path, tmp: &Path) -> Result<(), EngineError> {
        let remote = &self.git.remote;
        let fail =
            |what: &str, e: String| EngineError::msg(format!("{what} {}: {e}", redact(remote)));
        let bare_dir = tempfile::Builder::new()
            .prefix("git-")
            .tempdir_in(tmp)
            .map_err(|e| EngineError::msg(format!("{}: {e}", tmp.display())))?;
        let bare = bare_dir.path().to_string_lossy().into_owned();
        let gd = |args: &[&str]| -> Result<String, String> {
            let mut a = vec!["--git-dir", bare.as_str()];
            a.extend_from_slice(args);
            run_git(&a, None)
        };
        run_git(
            &["-c", "init.defaultBranch=master", "init", "--bare", &bare],
            None,
        )
        .map_err(|e| fail("git init for", e))?;
        self.fetch(&gd)
            .map_err(|e| fail("failed to fetch remote", e))?;
        let outs = out.to_string_lossy().into_owned();
        let (work, git_dir, _scratch) = if self.keep && self.git.subdir.is_empty() {
            // A repository of its own in `out`, holding only the fetched commit, origin the remote.
            let dot_git = out.join(".git").to_string_lossy().into_owned();
            let w = |args: &[&str]| -> Result<String, String> {
                let mut a = vec!["--git-dir", dot_git.as_str(), "--work-tree", outs.as_str()];
                a.extend_from_slice(args);
                run_git(&a, Some(out))
            };
            let step = |r: Result<String, String>| r.map_err(|e| fail("failed to check out", e));
            step(run_git(
                &["-c", "init.defaultBranch=master", "init", &outs],
                None,
            ))?;
            step(w(&["remote", "add", "origin", &format!("file://{bare}")]))?;
            let pull = if is_commit_sha(&self.used_ref) {
                step(gd(&["update-ref", "refs/lighter/checkout", &self.sha]))?;
                "refs/lighter/checkout".to_string()
            } else {
                format!("{0}:{0}", self.used_ref)
            };
            step(w(&["fetch", "-u", "--depth=1", "--", "origin", &pull]))?;
            step(w(&[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "FETCH_HEAD",
            ]))?;
            // The kept .git names the remote without its credentials, as BuildKit redacts them.
            step(w(&["remote", "set-url", "origin", &redact(remote)]))?;
            step(w(&["reflog", "expire", "--all", "--expire=now"]))?;
            let _ = std::fs::remove_file(out.join(".git/FETCH_HEAD"));
            (out.to_path_buf(), dot_git, None)
        } else {
            let scratch = if self.git.subdir.is_empty() {
                None
            } else {
                Some(
                    tempfile::Builder::new()
                        .prefix("git-checkout-")
                        .tempdir_in(tmp)
                        .map_err(|e| EngineError::msg(format!("{}: {e}", tmp.display())))?,
                )
            };
            let work = scratch
                .as_ref()
                .map(|s| s.path().to_path_buf())
                .unwrap_or_else(|| out.to_path_buf());
            let ws = work.to_string_lossy().into_owned();
            gd(&[
                "--work-tree",
                &ws,
                "checkout",
                "--no-overlay",
                &self.commit,
                "--",
                ".",
            ])
            .map_err(|e| fail("failed to checkout remote", e))?;
            (work, bare.clone(), scratch)
        };
        let ws = work.to_string_lossy().into_owned();
        if self.git.submodules && work.join(".gitmodules").exists() {
            run_git(
                &[
                    "--git-dir",
                    &git_dir,
                    "--work-tree",
                    &ws,
                    "submodule",
                    "update",
                    "--init",
                    "--recursive",
                    "--depth=1",
                ],
                Some(&work),
            )
            .map_err(|e| fail("failed to update submodules for", e))?;
        }
        if !self.git.subdir.is_empty() {
            move_subdir(&work, &self.git.subdir, out)?;
        }
        if self.git.mtime_commit {
            let t = gd(&[
                "log",
                "-1",
                "--format=%ct",
                &format!("{}^{{commit}}", self.commit),
            ])
            .map_err(|e| fail("failed to get commit time for", e))?;
            let t: i64 = t
                .trim()
                .parse()
                .map_err(|_| fail("bad commit time for", t.clone()))?;
            set_mtimes(out, t)?;
        }
        Ok(())
    }

    /// Brings the commit into the bare repository `gd` runs in.
    fn fetch(&self, gd: &dyn Fn(&[&str]) -> Result<String, String>) -> Result<(), String> {
        let remote = self.git.remote.as_str();
        if is_commit_sha(&self.used_ref) {
            if gd(&["fetch", "--depth=1", "--no-tags", "--", remote, &self.sha]).is_err() {
                // Servers that refuse a commit by name: fetch every branch and tag.
                gd(&[
                    "fetch",
                    "--tags",
                    "--",
                    remote,
                    "+refs/heads/*:refs/heads/*",
                ])?;
            }
            gd(&["cat-file", "-e", &format!("{}^{{commit}}", self.sha)])
                .map_err(|_| format!("commit {} is not in the repository", self.sha))?;
            return Ok(());
        }
        let spec = format!("+{0}:{0}", self.used_ref);
        gd(&["fetch", "--depth=1", "--no-tags", "--", remote, &spec])?;
        let got = gd(&["rev-parse", &self.used_ref])?;
        if got.trim() != self.sha {
            // The ref moved since ls-remote: fetch the commit the cache key names.
            gd(&["fetch", "--depth=1", "--no-tags", "--", remote, &self.sha]).map_err(|e| {
                format!(
                    "{} moved to {} and {} can no longer be fetched: {e}",
                    self.used_ref,
                    got.trim(),
                    self.sha
                )
            })?;
            gd(&["update-ref", &self.used_ref, &self.sha])?;
        }
        Ok(())
    }
}

/// Moves the contents of `work/subdir` into `out`; every component of `subdir` must be a real
/// directory (no symlink leaves the checkout).
fn move_subdir(work: &Path, subdir: &str, out: &Path) -> Result<(), EngineError> {
    let mut p = work.to_path_buf();
    for comp in subdir.split('/') {
        p.push(comp);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(EngineError::msg(format!(
                    "git subdir {subdir:?} contains non-directory {comp:?}"
                )))
            }
            Err(_) => {
                return Err(EngineError::msg(format!(
                    "git subdir {subdir:?} does not exist in the repository"
                )))
            }
        }
    }
    let io = |p: &Path, e: std::io::Error| EngineError::msg(format!("{}: {e}", p.display()));
    for e in std::fs::read_dir(&p).map_err(|e| io(&p, e))? {
        let e = e.map_err(|e| io(&p, e))?;
        std::fs::rename(e.path(), out.join(e.file_name())).map_err(|err| io(&e.path(), err))?;
    }
    Ok(())
}

/// Sets the mtime of everything under `root` (not following symlinks) to `secs`.
fn set_mtimes(root: &Path, secs: i64) -> Result<(), EngineError> {
    let touch = |p: &Path| {
        lighter_store::layer::set_times(p, secs, 0).map_err(|e| EngineError::msg(e.to_string()))
    };
    let mut dirs = vec![root.to_path_buf()];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd =
            std::fs::read_dir(&d).map_err(|e| EngineError::msg(format!("{}: {e}", d.display())))?;
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                dirs.push(p.clone());
                stack.push(p);
            } else {
                touch(&p)?;
            }
        }
    }
    // Directories last, deepest first, so writing children does not move them again.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        touch(&d)?;
    }
    Ok(())
}

/// Runs `git` (umask 022 as BuildKit, no prompts, no system config, file:// only when asked for) and
/// returns its stdout, or its stderr as the error.
fn run_git(args: &[&str], dir: Option<&Path>) -> Result<String, String> {
    let mut c = Command::new("git");
    c.args(["-c", "protocol.file.allow=user"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        // The host user's credentials are not the build's: no global config (credential helpers,
        // url rewrites), no agent, no ~/.ssh keys (BuildKit uses only what --ssh and secrets give).
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -F /dev/null -o IdentityFile=none -o IdentitiesOnly=yes -o BatchMode=yes",
        )
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null());
    if let Some(d) = dir {
        c.current_dir(d);
    }
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own state.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let o = c.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the `git` binary was not found in PATH (git sources need it: install the git package)"
                .to_string()
        } else {
            format!("git: {e}")
        }
    })?;
    if o.status.success() {
        return Ok(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    let msg: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = msg[msg.len().saturating_sub(4)..].join("; ");
    Err(format!(
        "git {} failed ({}): {}",
        subcommand(args),
        o.status,
        redact(&tail)
    ))
}

/// The git subcommand in `args` (after `-c X`, `--git-dir X`, `--work-tree X`), for messages.
fn subcommand<'a>(args: &[&'a str]) -> &'a str {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-c" | "--git-dir" | "--work-tree" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return a,
        }
    }
    ""
}

/// Hides a password in a URL (`https://user:secret@host` -> `https://user:xxxxx@host`).
pub(crate) fn redact(s: &str) -> String {
    let Some(i) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[i + 3..];
    let end = rest.find(['/', '#', '?']).unwrap_or(rest.len());
    match rest[..end]
        .rfind('@')
        .and_then(|at| rest[..at].find(':').map(|c| (c, at)))
    {
        Some((c, at)) => format!("{}{}:xxxxx{}", &s[..i + 3], &rest[..c], &rest[at..]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GitRef {
        parse(s)
            .unwrap()
            .unwrap_or_else(|| panic!("{s} is not git"))
    }

    #[test]
    fn references_as_buildkit() {
        let r = p("https://github.com/foo/bar.git#baz/qux:quux/quuz");
        assert_eq!(
            (r.remote.as_str(), r.reference.as_str(), r.subdir.as_str()),
            ("https://github.com/foo/bar.git", "baz/qux", "quux/quuz")
        );
        let r = p("git@github.com:moby/buildkit.git#v1:/docs/../src/");
        assert_eq!(
            (r.remote.as_str(), r.reference.as_str(), r.subdir.as_str()),
            ("git@github.com:moby/buildkit.git", "v1", "src")
        );
        let r = p("git://127.0.0.1:9418/repo");
        assert_eq!(
            (r.remote.as_str(), r.reference.as_str()),
            ("git://127.0.0.1:9418/repo", "")
        );
        let r = p("https://h/r.git?tag=v1&subdir=a&keep-git-dir=1&checksum=abc&submodules=false&mtime=commit");
        assert_eq!(r.reference, "refs/tags/v1");
        assert_eq!(
            (
                r.subdir.as_str(),
                r.keep_git_dir,
                r.checksum.as_deref(),
                r.submodules,
                r.mtime_commit
            ),
            ("a", Some(true), Some("abc"), false, true)
        );
        assert_eq!(
            p("ssh://git@h/r.git?branch=dev").reference,
            "refs/heads/dev"
        );
        assert!(parse("https://h/file.tar.gz").unwrap().is_none());
        assert!(parse("https://h/repo.git/").unwrap().is_none());
        assert!(parse("./a@b:c").unwrap().is_none());
        assert!(parse("dir/file").unwrap().is_none());
        assert!(parse("https://h/r.git?bogus=1").is_err());
        assert!(parse("https://h/r.git#main?tag=v1").unwrap().is_some());
        assert!(parse("https://h/r.git?tag=v1&branch=b").is_err());
        assert!(parse("https://h/r.git?ref=a&ref=b").is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("https://u:pw@h/r.git"), "https://u:xxxxx@h/r.git");
        assert_eq!(redact("https://u@h/r.git"), "https://u@h/r.git");
        assert_eq!(redact("git@h:r.git"), "git@h:r.git");
    }

    #[test]
    fn commit_shas() {
        assert!(is_commit_sha(&"a".repeat(40)));
        assert!(!is_commit_sha(&"A".repeat(40)));
        assert!(!is_commit_sha("main"));
    }
}
