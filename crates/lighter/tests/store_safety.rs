//! The store survives what happens to it: `system check` finds damage and `--repair` removes only
//! that; commands killed with SIGKILL at random points leave a sound store whose next command
//! succeeds (`LIGHTER_KILL_RUNS`, 20 by default; `scripts/killtest.sh` runs more); a build stopped by
//! SIGINT or SIGTERM stops its RUN step and unmounts; concurrent builds share a store with `prune`,
//! `rmi` and `tag` running beside them.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `system check --json`: (exit code, report).
fn check(env: &Env, repair: bool) -> (i32, serde_json::Value) {
    let mut args = vec!["system", "check", "--json"];
    if repair {
        args.push("--repair");
    }
    let o = env.lighter(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "system check printed no JSON: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

fn subjects(v: &serde_json::Value, severity: &str) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| format!("{}: {}", f["subject"], f["problem"]))
        .collect()
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn system_check_finds_damage_and_repair_removes_only_it() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let work = tempfile::tempdir().unwrap();
    for (name, seed) in [("good", 1u64), ("bad", 2), ("gone", 3)] {
        let t = work.path().join(format!("{name}.tar"));
        random_rootfs_tar(&t, 2, 1 << 20, seed);
        ok(
            &env.lighter(&["import", t.to_str().unwrap(), &format!("{name}:1")]),
            "import",
        );
    }
    ok(&env.lighter(&["tag", "good:1", "good:2"]), "tag");
    let (code, v) = check(&env, false);
    assert_eq!(code, 0, "a fresh store is sound: {v}");
    assert!(v["blobs"].as_u64().unwrap() >= 9);

    let layer_of = |name: &str| -> String {
        let o = env.lighter(&["inspect", "-f", "{{json .RootFS}}", name]);
        ok(&o, "inspect");
        let id = String::from_utf8_lossy(&env.lighter(&["inspect", "-f", "{{.Id}}", name]).stdout)
            .trim()
            .to_string();
        // The layer blob: the one blob the image's manifest names as a layer.
        let manifest = std::fs::read_dir(env.root.path().join("blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| std::fs::read(e.path()).unwrap())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .find(|m| m["config"]["digest"] == id.as_str())
            .expect("the image's manifest");
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let blobs = env.root.path().join("blobs/sha256");
    // bad:1's layer blob is corrupted (one byte flipped), gone:1's deleted.
    let bad = blobs.join(layer_of("bad:1"));
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    std::fs::remove_file(blobs.join(layer_of("gone:1"))).unwrap();
    std::fs::write(blobs.join("not-a-digest"), b"stray").unwrap();
    // An unpacked layer interrupted half-way is stale, not damage.
    std::fs::create_dir_all(
        env.root
            .path()
            .join("layers")
            .join("ab".repeat(32))
            .join("fs/x"),
    )
    .unwrap();

    let (code, v) = check(&env, false);
    assert_eq!(code, 4, "damage found and not repaired: {v}");
    let damage = subjects(&v, "damage");
    assert!(
        damage.iter().any(
            |d| d.contains(&bad.file_name().unwrap().to_string_lossy().to_string())
                && d.contains("corrupt")
        ),
        "{damage:?}"
    );
    assert!(damage.iter().any(|d| d.contains("bad:1")), "{damage:?}");
    assert!(damage.iter().any(|d| d.contains("gone:1")), "{damage:?}");
    assert!(
        damage.iter().any(|d| d.contains("not-a-digest")),
        "{damage:?}"
    );
    assert!(!damage.iter().any(|d| d.contains("good:")), "{damage:?}");
    assert!(
        subjects(&v, "stale")
            .iter()
            .any(|s| s.contains("interrupted")),
        "{v}"
    );
    // Nothing was changed by the check alone.
    assert!(bad.exists());

    let (code, v) = check(&env, true);
    assert_eq!(code, 1, "damage found and repaired: {v}");
    let (code, v) = check(&env, false);
    assert_eq!(code, 0, "sound after repair: {v}");
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    // The sound image and both its names are intact; the broken ones are gone with their names.
    let o = env.lighter(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let names = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        names.contains("good:1") && names.contains("good:2"),
        "{names}"
    );
    assert!(
        !names.contains("bad:1") && !names.contains("gone:1"),
        "{names}"
    );
    let out = work.path().join("good.out.tar");
    ok(
        &env.lighter(&["save", "-o", out.to_str().unwrap(), "good:1"]),
        "save after repair",
    );
    // The broken images can be brought back: the same import succeeds.
    ok(
        &env.lighter(&[
            "import",
            work.path().join("bad.tar").to_str().unwrap(),
            "bad:1",
        ]),
        "import after repair",
    );
    assert_eq!(check(&env, false).0, 0);
}

/// Mount points at or below `root` in this mount namespace.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&root))
        .collect()
}

/// Processes whose root or working directory is inside `root` (a RUN step left running).
fn processes_in(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for link in ["root", "cwd"] {
            if let Ok(t) = std::fs::read_link(e.path().join(link)) {
                if t.starts_with(root) {
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    out.push(format!(
                        "{pid}: {}",
                        String::from_utf8_lossy(&cmd).replace('\0', " ")
                    ));
                    break;
                }
            }
        }
    }
    out
}

fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` at most `limit`, killing it when the time is up.
fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let r = wait_until(limit, || child.try_wait().unwrap());
    if r.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    r
}

/// After a command died: no process, mount or session of it is left once the next command ran,
/// the store is sound, and nothing named is missing data.
fn assert_recovered(env: &Env, what: &str) {
    let root = env.root.path();
    let left = wait_until(Duration::from_secs(10), || {
        let p = processes_in(root);
        p.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "{what}: processes left: {:?}",
        processes_in(root)
    );
    let (code, v) = check(env, false);
    assert_eq!(code, 0, "{what}: system check: {v}");
    assert_eq!(
        mounts_under(root),
        Vec::<String>::new(),
        "{what}: mounts left"
    );
    let sessions: Vec<String> = std::fs::read_dir(root.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("s-"))
        .collect();
    assert!(sessions.is_empty(), "{what}: sessions left: {sessions:?}");
}

#[test]
fn killed_commands_leave_a_sound_store() {
    let Some(env) = with_busybox() else { return };
    let runs: usize = std::env::var("LIGHTER_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("LIGHTER_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill harness: {runs} runs, LIGHTER_KILL_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    random_file(&ctx.join("big"), 16 << 20, seed);
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY big /big\nRUN dd if=/dev/urandom of=/r bs=1M count=6 2>/dev/null && sleep 0.3\nRUN cat /big /r > /both\n",
        )],
    );
    let rootfs = work.path().join("rootfs.tar");
    random_rootfs_tar(&rootfs, 12, 1 << 20, seed ^ 7);
    let archive = work.path().join("saved.tar");
    let out = work.path().join("out.tar");
    let ctx_s = ctx.to_str().unwrap().to_string();
    let rootfs_s = rootfs.to_str().unwrap().to_string();
    let archive_s = archive.to_str().unwrap().to_string();
    let out_s = out.to_str().unwrap().to_string();
    // Something for save, tag, rmi and load to work on.
    ok(&env.lighter(&["import", &rootfs_s, "imp:0"]), "import");
    ok(&env.lighter(&["save", "-o", &archive_s, "imp:0"]), "save");
    ok(&env.lighter(&["rmi", "imp:0"]), "rmi");
    let commands: Vec<(&str, Vec<String>)> = vec![
        (
            "build",
            vec![
                "build".into(),
                "--no-cache".into(),
                "-q".into(),
                "-t".into(),
                "k:1".into(),
                ctx_s.clone(),
            ],
        ),
        (
            "build (cached)",
            vec![
                "build".into(),
                "-q".into(),
                "-t".into(),
                "k:2".into(),
                ctx_s.clone(),
            ],
        ),
        (
            "load",
            vec!["load".into(), "-q".into(), "-i".into(), archive_s.clone()],
        ),
        (
            "import",
            vec!["import".into(), rootfs_s.clone(), "imp:1".into()],
        ),
        (
            "save",
            vec!["save".into(), "-o".into(), out_s.clone(), "k:1".into()],
        ),
        ("tag", vec!["tag".into(), "k:1".into(), "k:tagged".into()]),
        ("rmi", vec!["rmi".into(), "imp:1".into()]),
        ("prune", vec!["prune".into(), "-a".into(), "-f".into()]),
    ];
    // Each command's own time, uninterrupted, bounds where it is killed.
    let mut took = std::collections::HashMap::new();
    for (name, args) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let o = env.lighter(&args);
        ok(&o, name);
        took.insert(*name, t.elapsed());
        // rmi needs its image back; prune needs something to collect.
        if *name == "rmi" {
            ok(&env.lighter(&["import", &rootfs_s, "imp:1"]), "import");
        }
    }
    let mut killed = 0;
    for i in 0..runs {
        let (name, args) = &commands[(rng.next_u64() % commands.len() as u64) as usize];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if *name == "rmi" {
            ok(&env.lighter(&["import", &rootfs_s, "imp:1"]), "import");
        }
        let span = took[name].as_millis().max(5) as u64 * 11 / 10;
        let delay = Duration::from_millis(rng.next_u64() % span);
        let mut child = env
            .cmd()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed += 1;
        }
        let what = format!("run {i}: {name} killed after {delay:?}");
        assert_recovered(&env, &what);
        // The same command succeeds afterwards.
        if *name == "rmi" && !env.lighter(&["inspect", "imp:1"]).status.success() {
            ok(&env.lighter(&["import", &rootfs_s, "imp:1"]), "import");
        }
        ok(&env.lighter(&args), &format!("{what}, then again"));
    }
    eprintln!("kill harness: {killed} of {runs} commands killed mid-way, all {runs} recovered");
    assert!(
        runs < 5 || killed * 2 >= runs,
        "most runs must kill a command mid-way: {killed} of {runs}"
    );
}

#[test]
fn interrupted_builds_stop_their_step_and_unmount() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo step-started; sleep 60; echo never\n",
        )],
    );
    for (signal, code) in [(libc_sig::SIGINT, 130), (libc_sig::SIGTERM, 143)] {
        let mut child = env
            .cmd()
            .args([
                "build",
                "--no-cache",
                "--progress",
                "plain",
                ctx.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(l);
            }
        });
        let started = Instant::now();
        let mut seen = false;
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                // The step's output, not the step's title (which has the same words).
                if l.ends_with("step-started") && !l.contains("RUN") {
                    seen = true;
                    break;
                }
            }
        }
        assert!(seen, "the RUN step started");
        // The step runs inside the store's session (its rootfs is there).
        assert!(
            wait_until(Duration::from_secs(10), || (!processes_in(env.root.path())
                .is_empty())
            .then_some(()))
            .is_some(),
            "the step runs inside the store"
        );
        let sent = Instant::now();
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = wait_child(&mut child, Duration::from_secs(20)).expect("stopped in time");
        assert_eq!(status.code(), Some(code), "signal {signal}");
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "did not wait for the step"
        );
        assert_recovered(&env, &format!("build stopped by signal {signal}"));
    }
}

/// Signal numbers for `kill -N`.
mod libc_sig {
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}

#[test]
fn concurrent_builds_share_a_store_with_prune_rmi_and_tag() {
    let Some(env) = with_busybox() else { return };
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nARG N\n\
             RUN --mount=type=cache,target=/locked,sharing=locked sh -c 'echo $N >> /locked/log; sleep 0.2'\n\
             RUN --mount=type=cache,target=/shared,sharing=shared sh -c 'echo $N > /shared/f$N'\n\
             RUN --mount=type=cache,target=/private,sharing=private sh -c 'echo $N > /private/f'\n\
             COPY data /data\n\
             RUN echo $N > /n && dd if=/dev/urandom of=/blob bs=64k count=8 2>/dev/null\n",
        )],
    );
    random_file(&ctx.join("data"), 1 << 20, 42);
    let rootfs = work.path().join("rootfs.tar");
    random_rootfs_tar(&rootfs, 1, 1 << 20, 9);
    for i in 0..6 {
        ok(
            &env.lighter(&["import", rootfs.to_str().unwrap(), &format!("victim:{i}")]),
            "import",
        );
    }
    let builds: Vec<Child> = (0..10)
        .map(|i| {
            env.cmd()
                .args([
                    "build",
                    "-q",
                    "--build-arg",
                    &format!("N={i}"),
                    "-t",
                    &format!("c:{i}"),
                    ctx.to_str().unwrap(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Beside them: prunes, removals and tags, each of which must succeed too.
    let mut side = Vec::new();
    for round in 0..6 {
        let args: Vec<String> = match round % 3 {
            0 if round == 3 => vec!["prune".into(), "-a".into(), "-f".into()],
            0 => vec!["prune".into(), "-f".into()],
            1 => vec!["rmi".into(), format!("victim:{round}")],
            _ => vec!["tag".into(), "busybox:latest".into(), format!("bb:{round}")],
        };
        let o = env.cmd().args(&args).output().unwrap();
        side.push((args.join(" "), o));
        std::thread::sleep(Duration::from_millis(150));
    }
    for (what, o) in &side {
        ok(o, what);
    }
    let limit = Instant::now() + Duration::from_secs(300);
    for (i, mut b) in builds.into_iter().enumerate() {
        let left = limit.saturating_duration_since(Instant::now());
        let status = wait_child(&mut b, left).unwrap_or_else(|| panic!("build {i} hung"));
        let mut err = String::new();
        std::io::Read::read_to_string(b.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "build {i}: {err}");
    }
    // Every image is whole: its files read back through `run`.
    for i in 0..10 {
        let o = env.lighter(&["run", "--rm", &format!("c:{i}"), "cat", "/n"]);
        ok(&o, &format!("run c:{i}"));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
    }
    let (code, v) = check(&env, false);
    assert_eq!(code, 0, "{v}");
    assert!(subjects(&v, "damage").is_empty(), "{v}");
}
