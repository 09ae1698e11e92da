//! RUN --mount: cache, tmpfs, secret, bind and ssh mounts turned into sandbox mounts, with the part of
//! each that enters the step's cache key (a secret's id and target, never its value).

use super::{Kind, LocalWorker, Output};
use crate::snapshot::View;
use crate::EngineError;
use lighter_dockerfile::{MountKind, Sharing};
use lighter_graph::{Exec, Mount, Op, Source, Vertex};
use lighter_solver::Input;
use std::path::{Path, PathBuf};

/// A RUN's mounts and what must live until the step is done.
pub(super) struct Mounts {
    pub mounts: Vec<lighter_sandbox::Mount>,
    /// One entry per mount, for the cache key.
    pub keys: Vec<String>,
    /// `KEY=value` entries for this RUN only (secrets as env, SSH_AUTH_SOCK): never in the cache key.
    pub env: Vec<String>,
    /// Read-only views of stages and images that bind mounts read.
    pub views: Vec<View>,
    /// Cache mount locks (`sharing`), held until the step is done.
    pub cache_locks: Vec<std::fs::File>,
    /// The ssh mounts' proxy sockets, listening until the step is done.
    pub ssh: Vec<super::ssh_proxy::SshProxy>,
    /// Work done only when the step runs, never on a cache hit (see `realize_mounts`).
    deferred: Vec<Deferred>,
    locks: Vec<PendingLock>,
}

/// A copy a mount's source needs, made when the step runs.
enum Deferred {
    /// The context's kept entries below `src` (a directory) into `to`.
    ContextDir { src: PathBuf, to: PathBuf },
    /// The context's regular file `src` to `to`, with its mode.
    ContextFile { src: PathBuf, to: PathBuf },
    /// A stage's or image's tree (a writable bind mount is copy-on-write).
    Tree { from: PathBuf, to: PathBuf },
    /// A `from=` bind mount: the source's view, `src` resolved in it, bound as mount `mount` (or,
    /// writable, copied to `copy`). Made only when the step runs, so a cache hit reads none of the
    /// source's layers (they may be known only by a build cache's records).
    FromView {
        layers: Vec<lighter_store::layer::LayerInfo>,
        src: String,
        mount: usize,
        copy: Option<PathBuf>,
    },
}

impl LocalWorker<'_, '_> {
    /// The name a mount's `from=` input was written as (a stage, an image, a named context).
    fn from_name(&self, v: &Vertex, input: usize) -> String {
        let src = self.def.vertex(v.inputs[input]);
        match &src.op {
            Op::Source(Source::Image { reference }) => reference.clone(),
            Op::Source(Source::Context { name: Some(n) }) => n.clone(),
            _ => {
                let st = &self.sh.req.dockerfile.stages[src.stage];
                st.name.clone().unwrap_or_else(|| src.stage.to_string())
            }
        }
    }

    /// Prepares the mounts of a RUN; files they need (secrets, private caches, writable binds)
    /// go in `tmp`.
    pub(super) fn mounts(
        &self,
        v: &Vertex,
        e: &Exec,
        inputs: &[Input<'_, Output>],
        tmp: &Path,
    ) -> Result<Mounts, EngineError> {
        let sh = self.sh;
        let mut out = Mounts {
            mounts: Vec::new(),
            keys: Vec::new(),
            env: Vec::new(),
            views: Vec::new(),
            cache_locks: Vec::new(),
            ssh: Vec::new(),
            deferred: Vec::new(),
            locks: Vec::new(),
        };
        let input = |m: &Mount| {
            m.input.and_then(|i| {
                inputs.get(i).map(|x| {
                    (
                        i,
                        Input {
                            output: x.output,
                            key: x.key,
                        },
                    )
                })
            })
        };
        for (mi, m) in e.mounts.iter().enumerate() {
            match m.kind {
                MountKind::Cache => {
                    let cid = m.id.clone();
                    let target = mount_target(&m.target)?;
                    let from = input(m).map(|(i, x)| (self.from_name(v, i), x));
                    let dir = self.cache_dir(
                        &cid,
                        from.as_ref().map(|(n, x)| {
                            (
                                n.as_str(),
                                Input {
                                    output: x.output,
                                    key: x.key,
                                },
                            )
                        }),
                        &m.source,
                        m,
                    )?;
                    // The lock is taken after every mount is prepared (see `lock_caches`).
                    out.locks.push(PendingLock {
                        dir: dir.clone(),
                        mount: out.mounts.len(),
                        sharing: m.sharing,
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                        mi,
                    });
                    let source = dir.clone();
                    out.mounts.push(lighter_sandbox::Mount {
                        target: target.clone(),
                        kind: lighter_sandbox::MountKind::Bind {
                            source,
                            readonly: m.readonly,
                            identity: None,
                        },
                    });
                    out.keys.push(match &from {
                        // The base is part of the cache's identity (its directory name).
                        Some(_) => format!(
                            "cache:{cid}:{target}:{}",
                            dir.file_name()
                                .map(|n| n.to_string_lossy())
                                .unwrap_or_default()
                        ),
                        None => format!("cache:{cid}:{target}"),
                    });
                }
                MountKind::Tmpfs => {
                    let target = mount_target(&m.target)?;
                    out.mounts.push(lighter_sandbox::Mount {
                        target: target.clone(),
                        kind: lighter_sandbox::MountKind::Tmpfs { size: m.size },
                    });
                    out.keys.push(format!("tmpfs:{target}"));
                }
                MountKind::Secret => {
                    let sid = m.id.clone();
                    let Some(secret) = sh.req.secrets.iter().find(|s| s.id == sid) else {
                        if m.required {
                            return Err(EngineError::msg(format!(
                                "secret {sid} not found: pass it with --secret id={sid},src=FILE"
                            )));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        out.env
                            .push(format!("{var}={}", String::from_utf8_lossy(&secret.value)));
                        if m.target.is_empty() {
                            out.keys.push(format!("secret-env:{sid}:{var}"));
                            continue;
                        }
                    }
                    let file = tmp.join(format!("secret-{mi}"));
                    std::fs::write(&file, &secret.value)
                        .map_err(|e| EngineError::msg(e.to_string()))?;
                    let _ = std::os::unix::fs::chown(
                        &file,
                        Some(m.uid.unwrap_or(0)),
                        Some(m.gid.unwrap_or(0)),
                    );
                    let _ = std::fs::set_permissions(
                        &file,
                        std::os::unix::fs::PermissionsExt::from_mode(m.mode.unwrap_or(0o400)),
                    );
                    let target = m.target.clone();
                    out.mounts.push(lighter_sandbox::Mount {
                        target: target.clone(),
                        kind: lighter_sandbox::MountKind::Bind {
                            source: file,
                            readonly: true,
                            identity: None,
                        },
                    });
                    // The key names the secret, never its value.
                    out.keys.push(format!("secret:{sid}:{target}"));
                }
                MountKind::Bind => {
                    let target = mount_target(&m.target)?;
                    let src_rel = crate::context::clean_rel(if m.source.is_empty() {
                        "/"
                    } else {
                        &m.source
                    });
                    let from = input(m).filter(|(_, x)| x.output.kind != Kind::Context);
                    if let Some((_, x)) = from {
                        out.deferred.push(Deferred::FromView {
                            layers: x.output.layers.clone(),
                            src: src_rel,
                            mount: out.mounts.len(),
                            copy: (!m.readonly).then(|| tmp.join(format!("bind-{mi}"))),
                        });
                        // The source and identity are filled in when the view is made.
                        out.mounts.push(lighter_sandbox::Mount {
                            target: target.clone(),
                            kind: lighter_sandbox::MountKind::Bind {
                                source: PathBuf::new(),
                                readonly: m.readonly,
                                identity: None,
                            },
                        });
                        out.keys.push(format!("bind:{target}:{}", x.key));
                        continue;
                    }
                    let (root, key, identity, private) =
                        self.context_bind(&src_rel, m.readonly, tmp, mi, &mut out)?;
                    // What is bound must be what was resolved inside the root (the sandbox checks
                    // the mount against this identity); a writable mount binds a copy of ours.
                    let (source, identity) = if private {
                        (root, None)
                    } else if m.readonly {
                        (root, identity)
                    } else {
                        // A writable bind mount is copy-on-write: changes are discarded.
                        let copy = tmp.join(format!("bind-{mi}"));
                        out.deferred.push(Deferred::Tree {
                            from: root,
                            to: copy.clone(),
                        });
                        (copy, None)
                    };
                    out.mounts.push(lighter_sandbox::Mount {
                        target: target.clone(),
                        kind: lighter_sandbox::MountKind::Bind {
                            source,
                            readonly: m.readonly,
                            identity,
                        },
                    });
                    out.keys.push(format!("bind:{target}:{key}"));
                }
                MountKind::Ssh => {
                    // The agent is reached through a socket bound into the sandbox (never into a
                    // layer), and SSH_AUTH_SOCK points at it for this RUN only.
                    let sid = m.id.clone();
                    let target = if m.target.is_empty() {
                        format!("/run/buildkit/ssh_agent.{mi}")
                    } else {
                        m.target.clone()
                    };
                    let Some(sock) = sh.req.ssh.get(&sid) else {
                        if m.required {
                            return Err(EngineError::msg(format!(
                                "RUN --mount=type=ssh: no SSH agent \"{sid}\" was given (pass --ssh {sid})"
                            )));
                        }
                        continue;
                    };
                    // A socket of the mount's own (BuildKit's defaults: root, 0600) relays to the agent.
                    let (uid, gid, mode) = (
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                        m.mode.unwrap_or(0o600),
                    );
                    let proxy = tmp.join(format!("ssh-{mi}.sock"));
                    out.ssh.push(super::ssh_proxy::SshProxy::start(
                        sock, &proxy, uid, gid, mode,
                    )?);
                    out.mounts.push(lighter_sandbox::Mount {
                        target: target.clone(),
                        kind: lighter_sandbox::MountKind::Bind {
                            source: proxy,
                            readonly: false,
                            identity: None,
                        },
                    });
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                    out.keys
                        .push(format!("ssh:{sid}:{target}:{uid}:{gid}:{mode:o}"));
                }
            }
        }
        Ok(out)
    }

    /// What `mounts` left for the step itself: the copies mount sources need, then the cache
    /// locks (after every copy, so no lock is held while copying).
    pub(super) fn realize_mounts(&self, out: &mut Mounts, tmp: &Path) -> Result<(), EngineError> {
        for d in std::mem::take(&mut out.deferred) {
            match d {
                Deferred::ContextDir { src, to } => {
                    let ctx = self.sh.context.as_ref().ok_or_else(|| {
                        EngineError::msg("RUN --mount=type=bind needs a build context")
                    })?;
                    std::fs::create_dir(&to).map_err(|e| {
                        EngineError::msg(format!("context bind mount {}: {e}", to.display()))
                    })?;
                    ctx.copy_kept(&src, &to)?;
                }
                Deferred::ContextFile { src, to } => {
                    let ctx = self.sh.context.as_ref().ok_or_else(|| {
                        EngineError::msg("RUN --mount=type=bind needs a build context")
                    })?;
                    copy_context_file(ctx, &src, &to)?;
                }
                Deferred::Tree { from, to } => {
                    lighter_store::layer::copy_tree(&from, &to).map_err(|e| {
                        EngineError::msg(format!("copy bind mount source {}: {e}", from.display()))
                    })?;
                }
                Deferred::FromView {
                    layers,
                    src,
                    mount,
                    copy,
                } => {
                    let v = crate::snapshot::view(self.sh.store, &layers)?;
                    let p = in_root(&v.path, &src)?;
                    let (source, identity) = match copy {
                        // A writable bind mount is copy-on-write: changes are discarded.
                        Some(to) => {
                            lighter_store::layer::copy_tree(&p, &to).map_err(|e| {
                                EngineError::msg(format!(
                                    "copy bind mount source {}: {e}",
                                    p.display()
                                ))
                            })?;
                            (to, None)
                        }
                        None => {
                            let id = identity_in(&v.path, &p)?;
                            (p, Some(id))
                        }
                    };
                    out.views.push(v);
                    match out.mounts.get_mut(mount) {
                        Some(lighter_sandbox::Mount {
                            kind:
                                lighter_sandbox::MountKind::Bind {
                                    source: s,
                                    identity: i,
                                    ..
                                },
                            ..
                        }) => {
                            *s = source;
                            *i = identity;
                        }
                        _ => {
                            return Err(EngineError::msg(format!(
                                "internal error: bind mount {mount} of a from= source is missing"
                            )))
                        }
                    }
                }
            }
        }
        let locks = std::mem::take(&mut out.locks);
        lock_caches(out, locks, tmp)
    }

    /// The context as a bind mount of `src_rel` sees it: bound in place when it is read-only and
    /// nothing below it is ignored; else the kept entries copied into `tmp` (a writable mount
    /// needs a copy anyway, and this one reads through the context's root, never by path).
    /// Returns the source, the content key, its identity and whether it is a private copy.
    fn context_bind(
        &self,
        src_rel: &str,
        readonly: bool,
        tmp: &Path,
        mi: usize,
        out: &mut Mounts,
    ) -> Result<(PathBuf, String, Option<(u64, u64)>, bool), EngineError> {
        let ctx = self
            .sh
            .context
            .as_ref()
            .ok_or_else(|| EngineError::msg("RUN --mount=type=bind needs a build context"))?;
        let sel = ctx.select(if src_rel.is_empty() { "." } else { src_rel })?;
        let key = ctx.digest(&sel)?;
        let src = sel[0].src.clone();
        let is_dir = std::fs::symlink_metadata(ctx.dir.join(&src)).is_ok_and(|m| m.is_dir());
        if readonly && !(is_dir && ctx.ignores_under(&src)) {
            // `select` resolved the source inside the context already; its root gives the identity.
            let id = ctx
                .root()
                .identity(&src)
                .map_err(|e| EngineError::msg(format!("mount source /{}: {e}", src.display())))?;
            return Ok((ctx.dir.join(&src), key, Some(id), false));
        }
        // The copy is made when the step runs; it is this step's own, so no identity to check.
        let to = tmp.join(format!("context-{mi}"));
        out.deferred.push(if is_dir {
            Deferred::ContextDir {
                src,
                to: to.clone(),
            }
        } else {
            Deferred::ContextFile {
                src,
                to: to.clone(),
            }
        });
        Ok((to, key, None, true))
    }

    /// The directory of cache mount `cid`, created on first use. With `from`, the cache starts as a
    /// copy of `source` in that stage, context or image (BuildKit keys such a cache by its id and its
    /// base, so a changed base starts a new cache); without, as an empty directory with `mode`, `uid`
    /// and `gid`.
    fn cache_dir(
        &self,
        cid: &str,
        from: Option<(&str, Input<'_, Output>)>,
        source: &str,
        m: &Mount,
    ) -> Result<PathBuf, EngineError> {
        let sh = self.sh;
        let err = |e: std::io::Error| EngineError::msg(format!("cache mount {cid}: {e}"));
        let Some(from) = from else {
            let dir = sh.store.cache_mount_dir(cid);
            if !dir.exists() {
                std::fs::create_dir_all(&dir).map_err(err)?;
                let _ = std::os::unix::fs::chown(&dir, m.uid, m.gid);
                let _ = std::fs::set_permissions(
                    &dir,
                    std::os::unix::fs::PermissionsExt::from_mode(m.mode.unwrap_or(0o755)),
                );
            }
            return Ok(dir);
        };
        let (from, input) = from;
        let src_rel = crate::context::clean_rel(if source.is_empty() { "/" } else { source });
        let (layers, base_key) = (&input.output.layers, input.key.as_str());
        let dir = sh
            .store
            .cache_mount_dir(&format!("{cid}\0{base_key}\0{src_rel}"));
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(dir);
        }
        let view = crate::snapshot::view(sh.store, layers)?;
        // Symlinks in the stage resolve inside it, never to the host's files.
        let src = in_root(&view.path, &src_rel)?;
        if !std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir()) {
            return Err(EngineError::msg(format!(
                "RUN --mount=type=cache,from={from},source={}: not a directory in {from}",
                if source.is_empty() { "/" } else { source }
            )));
        }
        // Filled beside its final name and renamed, so a failed copy never leaves a half cache.
        let parent = dir.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent).map_err(err)?;
        let fill = tempfile::Builder::new()
            .prefix(".fill-")
            .tempdir_in(parent)
            .map_err(err)?;
        let target = fill.path().join("c");
        lighter_store::layer::copy_tree(&src, &target).map_err(|e| {
            EngineError::msg(format!(
                "cache mount {cid}: copy {src_rel} from {from}: {e}"
            ))
        })?;
        if let Err(e) = std::fs::rename(&target, &dir) {
            // Another build filled it first: use theirs.
            if !dir.exists() {
                return Err(err(e));
            }
        }
        Ok(dir)
    }
}

/// A bind, cache or tmpfs mount's target as the graph placed it (relative targets joined to
/// WORKDIR, no target is WORKDIR itself); `/` is refused, as BuildKit does.
fn mount_target(t: &str) -> Result<String, EngineError> {
    if crate::context::clean_rel(t).is_empty() {
        return Err(EngineError::msg(format!("invalid mount target \"{t}\"")));
    }
    Ok(t.to_string())
}

/// `(st_dev, st_ino)` of `abs` (a path [`in_root`] returned under `root`), opened inside `root`.
fn identity_in(root: &Path, abs: &Path) -> Result<(u64, u64), EngineError> {
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    lighter_store::fsroot::Root::open(root)
        .and_then(|r| r.identity(rel))
        .map_err(|e| EngineError::msg(format!("mount source /{}: {e}", rel.display())))
}

/// `rel` resolved inside `root` (a stage's view or the context): a mount source never follows a
/// symlink out to the host.
fn in_root(root: &Path, rel: &str) -> Result<PathBuf, EngineError> {
    lighter_store::layer::resolve_in_root(root, Path::new(rel))
        .map_err(|e| EngineError::msg(format!("mount source {rel}: {e}")))
}

/// Copies the context's regular file `src` to `to` with its mode, owner and mtime.
fn copy_context_file(
    ctx: &crate::context::BuildContext,
    src: &Path,
    to: &Path,
) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let err =
        |e: std::io::Error| EngineError::msg(format!("context bind mount /{}: {e}", src.display()));
    let mut from = ctx.open_file(src).map_err(err)?;
    let md = from.metadata().map_err(err)?;
    let mut out = std::fs::File::create(to).map_err(err)?;
    std::io::copy(&mut from, &mut out).map_err(err)?;
    std::fs::set_permissions(
        to,
        std::os::unix::fs::PermissionsExt::from_mode(md.mode() & 0o7777),
    )
    .map_err(err)?;
    let _ = std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()));
    let _ = lighter_store::layer::set_times(to, md.mtime(), md.mtime_nsec());
    Ok(())
}

/// A cache mount's lock, taken once every mount of the step is prepared.
struct PendingLock {
    dir: PathBuf,
    /// Index of its mount in `Mounts::mounts`.
    mount: usize,
    sharing: Sharing,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
    mi: usize,
}

/// `flock(2)` on `fd`, retried on EINTR. `Ok(false)`: a non-blocking request found it held.
fn flock(fd: std::os::fd::RawFd, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor the caller owns and keeps open.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if op & libc::LOCK_NB != 0 => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Takes the cache mounts' locks: after everything that can wait for another stage (a `from=`
/// stage is waited for while the mounts are prepared, never while a lock is held), in one order
/// (sorted by directory) in every step and process, and once per directory in a step (two mounts
/// of one cache share its lock: two flocks on two opens of one file would wait for each other).
/// `locked` waits for the cache to be free, `shared` writers run together, `private` takes a fresh
/// empty directory when another step holds the cache.
fn lock_caches(
    out: &mut Mounts,
    mut locks: Vec<PendingLock>,
    tmp: &Path,
) -> Result<(), EngineError> {
    locks.sort_by(|a, b| a.dir.cmp(&b.dir));
    let mut i = 0;
    while i < locks.len() {
        let j = i + locks[i..]
            .iter()
            .take_while(|l| l.dir == locks[i].dir)
            .count();
        let group = &locks[i..j];
        let err = |e: std::io::Error| {
            EngineError::msg(format!("cache mount {}: {e}", group[0].dir.display()))
        };
        let lock_path = PathBuf::from(format!("{}.lock", group[0].dir.display()));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(err)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&lock);
        let has = |s: Sharing| group.iter().any(|l| l.sharing == s);
        let exclusive = if has(Sharing::Locked) {
            flock(fd, libc::LOCK_EX).map_err(err)?
        } else if has(Sharing::Private) {
            flock(fd, libc::LOCK_EX | libc::LOCK_NB).map_err(err)?
        } else {
            flock(fd, libc::LOCK_SH).map_err(err)?
        };
        if !exclusive && !has(Sharing::Locked) {
            for l in group.iter().filter(|l| l.sharing == Sharing::Private) {
                let fresh = tmp.join(format!("cache-{}", l.mi));
                std::fs::create_dir_all(&fresh).map_err(err)?;
                let _ = std::os::unix::fs::chown(&fresh, l.uid, l.gid);
                let mode = l.mode.unwrap_or(0o755);
                std::fs::set_permissions(
                    &fresh,
                    std::os::unix::fs::PermissionsExt::from_mode(mode),
                )
                .map_err(err)?;
                if let lighter_sandbox::MountKind::Bind { source, .. } =
                    &mut out.mounts[l.mount].kind
                {
                    *source = fresh;
                }
            }
            if has(Sharing::Shared) {
                flock(fd, libc::LOCK_SH).map_err(err)?;
            }
        }
        out.cache_locks.push(lock);
        i = j;
    }
    Ok(())
}
