//! Raw nodes -> typed instructions, with BuildKit's argument and flag validation
//! (`frontend/dockerfile/instructions/parse.go`).

use crate::ast::*;
use crate::error::{suggest, ErrorKind, ParseError};
use crate::flags::{parse_duration, FlagType, Flags};
use crate::raw::Node;

/// Every instruction keyword, lowercased.
pub const KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

pub(crate) fn span_of(n: &Node) -> Span {
    Span {
        start_line: n.start_line,
        end_line: n.end_line,
        start_col: n.start_col.max(1),
        line_offset: n.start_offset,
        end_offset: n.end_offset,
    }
}

/// A typed FROM line.
pub(crate) struct From {
    pub base: String,
    pub name: Option<String>,
    pub name_original: Option<String>,
    pub as_keyword: Option<String>,
    pub platform: Option<String>,
}

/// Either a FROM (starts a stage) or any other instruction.
pub(crate) enum Parsed {
    From(From),
    Other(Instruction),
}

pub(crate) fn parse_node(n: Node) -> Result<Parsed, ParseError> {
    let span = span_of(&n);
    let Node {
        keyword,
        keyword_original,
        original,
        flags,
        args,
        json,
        inner,
        heredocs,
        comments,
        ..
    } = n;
    let n = NodeRef {
        keyword: &keyword,
        keyword_original: &keyword_original,
        flags: &flags,
        json,
        start_line: span.start_line,
        end_line: span.end_line,
    };
    let err = |kind: ErrorKind, msg: String| ParseError::new(kind, span, msg);
    let flag_err =
        |msg: String| ParseError::new(ErrorKind::Flag, span, msg).expected(flag_help(n.keyword));
    // Only error messages need the upper-case keyword: build it lazily.
    let kw_upper = Upper(n.keyword);
    let no_flags =
        || -> Result<(), ParseError> { Flags::parse(n.flags, &[]).map(|_| ()).map_err(flag_err) };
    let exactly_one = |what: &str| -> Result<String, ParseError> {
        if args.len() != 1 {
            return Err(err(
                ErrorKind::Arguments,
                format!("{kw_upper} requires exactly one argument"),
            )
            .expected(what.to_string()));
        }
        Ok(args[0].clone())
    };
    let command = |args: Vec<String>| -> Command {
        if json {
            Command::Exec(args)
        } else {
            Command::Shell(args.into_iter().next().unwrap_or_default())
        }
    };

    let kind = match keyword.as_str() {
        "from" => {
            let f = Flags::parse(n.flags, &[("platform", FlagType::Str)]).map_err(flag_err)?;
            if args.len() != 1 && args.len() != 3 {
                return Err(err(
                    ErrorKind::Arguments,
                    "FROM requires either one or three arguments".into(),
                )
                .expected("FROM [--platform=<platform>] <image> [AS <name>]"));
            }
            let mut from = From {
                base: args[0].clone(),
                name: None,
                name_original: None,
                as_keyword: None,
                platform: f.str("platform"),
            };
            if args.len() == 3 {
                if !args[1].eq_ignore_ascii_case("as") {
                    return Err(err(
                        ErrorKind::Arguments,
                        "Syntax error - can't find 'AS' in FROM".into(),
                    )
                    .expected("FROM <image> AS <name>"));
                }
                let name = args[2].to_ascii_lowercase();
                if !valid_stage_name(&name) {
                    return Err(err(
                        ErrorKind::Arguments,
                        format!("invalid name for build stage: \"{}\", name can't start with a number or contain symbols", args[2]),
                    ));
                }
                from.as_keyword = Some(args[1].clone());
                from.name_original = Some(args[2].clone());
                from.name = Some(name);
            }
            return Ok(Parsed::From(from));
        }
        "run" => {
            let f = Flags::parse(
                n.flags,
                &[
                    ("mount", FlagType::Strings),
                    ("network", FlagType::Str),
                    ("security", FlagType::Str),
                ],
            )
            .map_err(flag_err)?;
            let mounts = f
                .strings("mount")
                .iter()
                .map(|m| parse_mount(m).map_err(|e| err(ErrorKind::Flag, e)))
                .collect::<Result<Vec<_>, _>>()?;
            let network = match f.str("network").as_deref() {
                None => None,
                Some("default") => Some(NetworkMode::Default),
                Some("none") => Some(NetworkMode::None),
                Some("host") => Some(NetworkMode::Host),
                Some(other) => {
                    return Err(err(
                        ErrorKind::Flag,
                        format!("unsupported network mode: {other}"),
                    )
                    .expected("default, none or host"))
                }
            };
            let security = f.str("security");
            if let Some(s) = &security {
                if s != "sandbox" && s != "insecure" {
                    return Err(
                        err(ErrorKind::Flag, format!("unsupported security mode: {s}"))
                            .expected("sandbox or insecure"),
                    );
                }
            }
            InstructionKind::Run(Run {
                command: command(args),
                heredocs,
                mounts,
                network,
                security,
            })
        }
        "copy" | "add" => {
            let add = n.keyword == "add";
            let mut decl = vec![
                ("chown", FlagType::Str),
                ("chmod", FlagType::Str),
                ("link", FlagType::Bool),
                ("exclude", FlagType::Strings),
            ];
            if add {
                decl.extend([
                    ("checksum", FlagType::Str),
                    ("keep-git-dir", FlagType::Bool),
                    ("unpack", FlagType::Bool),
                ]);
            } else {
                decl.extend([("from", FlagType::Str), ("parents", FlagType::Bool)]);
            }
            let f = Flags::parse(n.flags, &decl).map_err(flag_err)?;
            if args.len() < 2 {
                let provided = if args.is_empty() {
                    "none was"
                } else {
                    "only one was"
                };
                return Err(err(
                    ErrorKind::Arguments,
                    format!("{kw_upper} requires at least two arguments, but {provided} provided. Destination could not be determined"),
                )
                .expected(format!("{kw_upper} [--flags] <src>... <dest>")));
            }
            let mut sources = args;
            let dest = sources.pop().unwrap_or_default();
            let c = Copy {
                sources,
                dest,
                json: n.json,
                from: f.str("from"),
                chown: f.str("chown"),
                chmod: f.str("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                exclude: f.strings("exclude"),
                checksum: f.str("checksum"),
                keep_git_dir: f.bool("keep-git-dir"),
                unpack: f.opt_bool("unpack"),
                heredocs,
            };
            if let Some(m) = &c.chmod {
                if !valid_chmod(m) {
                    return Err(
                        err(ErrorKind::Flag, format!("invalid chmod parameter: {m}"))
                            .expected("an octal mode such as 0755, or a symbolic mode such as u+x"),
                    );
                }
            }
            if add {
                InstructionKind::Add(c)
            } else {
                InstructionKind::Copy(c)
            }
        }
        "env" | "label" => {
            no_flags()?;
            if args.is_empty() {
                return Err(err(
                    ErrorKind::Arguments,
                    format!("{kw_upper} requires at least one argument"),
                )
                .expected(format!("{kw_upper} <key>=<value> ...")));
            }
            let mut kvs = Vec::with_capacity(args.len() / 3);
            let mut it = args.into_iter();
            while let (Some(key), Some(value), Some(sep)) = (it.next(), it.next(), it.next()) {
                kvs.push(KeyValue {
                    key,
                    value,
                    legacy: sep.is_empty(),
                });
            }
            if n.keyword == "env" {
                InstructionKind::Env(kvs)
            } else {
                InstructionKind::Label(kvs)
            }
        }
        "arg" => {
            no_flags()?;
            if args.is_empty() {
                return Err(err(
                    ErrorKind::Arguments,
                    "ARG requires at least one argument".into(),
                )
                .expected("ARG <name>[=<default value>]"));
            }
            InstructionKind::Arg(
                args.into_iter()
                    .map(|a| match a.split_once('=') {
                        Some((k, v)) => ArgDef {
                            name: k.to_string(),
                            default: Some(v.to_string()),
                        },
                        None => ArgDef {
                            name: a,
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "workdir" => {
            no_flags()?;
            InstructionKind::Workdir(exactly_one("WORKDIR <path>")?)
        }
        "user" => {
            no_flags()?;
            InstructionKind::User(exactly_one("USER <user>[:<group>]")?)
        }
        "maintainer" => {
            no_flags()?;
            InstructionKind::Maintainer(exactly_one("MAINTAINER <name>")?)
        }
        "stopsignal" => {
            no_flags()?;
            InstructionKind::StopSignal(exactly_one("STOPSIGNAL <signal>")?)
        }
        "expose" => {
            no_flags()?;
            if args.is_empty() {
                return Err(err(
                    ErrorKind::Arguments,
                    "EXPOSE requires at least one argument".into(),
                )
                .expected("EXPOSE <port>[/<protocol>] ..."));
            }
            InstructionKind::Expose(args)
        }
        "volume" => {
            no_flags()?;
            if args.is_empty() {
                return Err(err(
                    ErrorKind::Arguments,
                    "VOLUME requires at least one argument".into(),
                )
                .expected("VOLUME <path> ..."));
            }
            if args.iter().any(|a| a.trim().is_empty()) {
                return Err(err(
                    ErrorKind::Arguments,
                    "VOLUME specified can not be an empty string".into(),
                ));
            }
            InstructionKind::Volume(args)
        }
        "cmd" => {
            no_flags()?;
            InstructionKind::Cmd(command(args))
        }
        "entrypoint" => {
            no_flags()?;
            InstructionKind::Entrypoint(command(args))
        }
        "shell" => {
            no_flags()?;
            if !n.json {
                return Err(err(
                    ErrorKind::Arguments,
                    "SHELL requires the arguments to be in JSON form".into(),
                )
                .expected("SHELL [\"executable\", \"parameters\"]"));
            }
            if args.is_empty() {
                return Err(err(
                    ErrorKind::Arguments,
                    "SHELL requires at least one argument".into(),
                ));
            }
            InstructionKind::Shell(args)
        }
        "healthcheck" => {
            InstructionKind::Healthcheck(parse_healthcheck(&n, args).map_err(|(k, m)| err(k, m))?)
        }
        "onbuild" => {
            no_flags()?;
            let Some(inner) = inner else {
                return Err(err(
                    ErrorKind::Arguments,
                    "ONBUILD requires at least one argument".into(),
                )
                .expected("ONBUILD <INSTRUCTION>"));
            };
            match inner.keyword.as_str() {
                "onbuild" => {
                    return Err(err(
                        ErrorKind::Arguments,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                    ))
                }
                "from" | "maintainer" => {
                    return Err(err(
                        ErrorKind::Arguments,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            inner.keyword.to_ascii_uppercase()
                        ),
                    ))
                }
                _ => {}
            }
            let mut inner_node = *inner;
            inner_node.start_line = span.start_line;
            inner_node.end_line = span.end_line;
            inner_node.start_offset = span.line_offset;
            inner_node.end_offset = span.end_offset;
            inner_node.start_col = span.start_col;
            inner_node.heredocs = heredocs;
            match parse_node(inner_node)? {
                Parsed::Other(i) => InstructionKind::Onbuild(Box::new(i)),
                Parsed::From(_) => unreachable!("FROM rejected above"),
            }
        }
        other => {
            let mut e = err(
                ErrorKind::UnknownInstruction,
                format!("unknown instruction: {}", n.keyword_original),
            );
            if let Some(s) = suggest(other, KEYWORDS) {
                e = e.hint(format!("did you mean {}?", s.to_ascii_uppercase()));
            }
            return Err(e);
        }
    };
    Ok(Parsed::Other(Instruction {
        kind,
        span,
        keyword: keyword_original,
        original,
        comments,
    }))
}

fn flag_help(keyword: &str) -> String {
    match keyword {
        "from" => "--platform".into(),
        "run" => "--mount, --network, --security".into(),
        "copy" => "--from, --chown, --chmod, --link, --parents, --exclude".into(),
        "add" => "--chown, --chmod, --link, --exclude, --checksum, --keep-git-dir, --unpack".into(),
        "healthcheck" => {
            "--interval, --timeout, --start-period, --start-interval, --retries".into()
        }
        k => format!("no flags: {} takes none", k.to_ascii_uppercase()),
    }
}

/// BuildKit's stage name rule: `^[a-z][a-z0-9-_\.]*$` (after lowercasing).
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Octal modes, or symbolic modes (`u+x`, `go-w,a+r`), or a variable to expand later.
fn valid_chmod(m: &str) -> bool {
    if m.contains('$') {
        return true;
    }
    if !m.is_empty() && m.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(m, 8)
            .map(|v| v <= 0o7777)
            .unwrap_or(false);
    }
    m.split(',').all(|clause| {
        let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
        !ops.is_empty()
            && ops.starts_with(['+', '-', '='])
            && ops
                .chars()
                .all(|c| matches!(c, '+' | '-' | '=' | 'r' | 'w' | 'x' | 'X' | 's' | 't'))
    })
}

/// The parts of a raw node the checks below read, once its owned fields have been moved out.
struct NodeRef<'a> {
    keyword: &'a str,
    keyword_original: &'a str,
    flags: &'a [String],
    json: bool,
    #[allow(dead_code)]
    start_line: usize,
    #[allow(dead_code)]
    end_line: usize,
}

fn parse_healthcheck(
    n: &NodeRef<'_>,
    args: Vec<String>,
) -> Result<Healthcheck, (ErrorKind, String)> {
    let f = Flags::parse(
        n.flags,
        &[
            ("interval", FlagType::Str),
            ("timeout", FlagType::Str),
            ("start-period", FlagType::Str),
            ("start-interval", FlagType::Str),
            ("retries", FlagType::Str),
        ],
    )
    .map_err(|e| (ErrorKind::Flag, e))?;
    let Some(typ) = args.first() else {
        return Err((
            ErrorKind::Arguments,
            "HEALTHCHECK requires an argument".into(),
        ));
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if args.len() > 1 {
                return Err((
                    ErrorKind::Arguments,
                    "HEALTHCHECK NONE takes no arguments".into(),
                ));
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            let rest = &args[1..];
            if rest.is_empty() || (!n.json && rest[0].is_empty()) {
                return Err((
                    ErrorKind::Arguments,
                    "Missing command after HEALTHCHECK CMD".into(),
                ));
            }
            let command = if n.json {
                Command::Exec(rest.to_vec())
            } else {
                Command::Shell(rest[0].clone())
            };
            let dur = |name: &str| -> Result<Option<u64>, (ErrorKind, String)> {
                match f.str(name) {
                    None => Ok(None),
                    Some(v) => {
                        let d = parse_duration(&v).ok_or((
                            ErrorKind::Flag,
                            format!("invalid duration for --{name}: {v}"),
                        ))?;
                        if d != 0 && d < 1_000_000 {
                            return Err((
                                ErrorKind::Flag,
                                format!("Interval \"{name}\" cannot be less than 1ms"),
                            ));
                        }
                        Ok(Some(d))
                    }
                }
            };
            let retries = match f.str("retries") {
                None => None,
                Some(v) => {
                    let r: i64 = v.parse().map_err(|_| {
                        (ErrorKind::Flag, format!("invalid value for --retries: {v}"))
                    })?;
                    if r < 0 {
                        return Err((ErrorKind::Flag, "--retries cannot be negative".into()));
                    }
                    Some(r as u32)
                }
            };
            Ok(Healthcheck::Cmd {
                command,
                interval: dur("interval")?,
                timeout: dur("timeout")?,
                start_period: dur("start-period")?,
                start_interval: dur("start-interval")?,
                retries,
            })
        }
        other => Err((
            ErrorKind::Arguments,
            format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)"),
        )),
    }
}

/// `--mount=type=cache,target=/x,...` (CSV of key[=value]).
pub(crate) fn parse_mount(spec: &str) -> Result<RunMount, String> {
    let mut m = RunMount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: Sharing::Shared,
        readonly: true,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        env: None,
        size: None,
    };
    let fields: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    // The type decides defaults, so read it first.
    for f in &fields {
        if let Some(t) = f.strip_prefix("type=") {
            m.kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountKind::Bind,
                "cache" => MountKind::Cache,
                "tmpfs" => MountKind::Tmpfs,
                "secret" => MountKind::Secret,
                "ssh" => MountKind::Ssh,
                other => return Err(format!("unsupported mount type \"{other}\"")),
            };
        }
    }
    m.readonly = matches!(m.kind, MountKind::Bind | MountKind::Secret | MountKind::Ssh);
    let bool_val = |k: &str, v: Option<&str>| -> Result<bool, String> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(o) => Err(format!("invalid value for {k}: {o}")),
        }
    };
    let num = |k: &str, v: &str, radix: u32| -> Result<u32, String> {
        u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {k}: {v}"))
    };
    for f in fields {
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (f.to_ascii_lowercase(), None),
        };
        let need = || v.ok_or_else(|| format!("invalid field '{f}' must be a key=value pair"));
        match k.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = Some(need()?.to_string()),
            "source" | "src" => m.source = Some(need()?.to_string()),
            "from" => {
                let v = need()?;
                // BuildKit: a stage's mounts are known before anything runs, so no variables.
                if v.find('$').is_some_and(|i| i != v.len() - 1) {
                    return Err(format!(
                        "'{k}' doesn't support variable expansion, define alias stage instead"
                    ));
                }
                m.from = Some(v.to_string())
            }
            "id" => m.id = Some(need()?.to_string()),
            "readonly" | "ro" => m.readonly = bool_val(&k, v)?,
            "readwrite" | "rw" => m.readonly = !bool_val(&k, v)?,
            "required" => m.required = bool_val(&k, v)?,
            "sharing" => {
                m.sharing = match need()?.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    o => return Err(format!("unsupported sharing value \"{o}\"")),
                }
            }
            "mode" => m.mode = Some(num(&k, need()?, 8)?),
            "uid" => m.uid = Some(num(&k, need()?, 10)?),
            "gid" => m.gid = Some(num(&k, need()?, 10)?),
            "env" => m.env = Some(need()?.to_string()),
            "size" => {
                m.size = Some(
                    parse_size(need()?).ok_or_else(|| format!("invalid value for size: {f}"))?,
                )
            }
            _ => return Err(format!("unexpected key '{k}' in '{f}'")),
        }
    }
    // No target: BuildKit mounts at WORKDIR (the engine resolves it, and refuses `/`).
    if m.kind == MountKind::Secret && m.id.is_none() && m.target.is_none() && m.source.is_none() {
        return Err("secret mount requires an id, a source or a target".into());
    }
    Ok(m)
}

/// `64m`, `1g`, `1024` (bytes), as docker's units.RAMInBytes.
fn parse_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches(['b', 'i']);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().ok()?;
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m =
            parse_mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000")
                .unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert!(!m.readonly);
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.sharing, Sharing::Locked);
        let s = parse_mount("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(s.required && s.readonly);
        // BuildKit mounts at WORKDIR when no target is given (the release Dockerfiles of buildx,
        // compose and buildkit rely on it).
        let b = parse_mount("type=bind,from=binaries,source=/x").unwrap();
        assert_eq!((b.target, b.from.as_deref()), (None, Some("binaries")));
        assert!(parse_mount("type=bind,from=$STAGE")
            .unwrap_err()
            .contains("doesn't support variable expansion"));
        assert!(parse_mount("type=bind,from=a$").is_ok());
        assert!(parse_mount("type=nope,target=/x").is_err());
        assert!(parse_mount("target=/x,bogus=1")
            .unwrap_err()
            .contains("unexpected key"));
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
    }

    #[test]
    fn chmod_forms() {
        assert!(valid_chmod("0755") && valid_chmod("u+x") && valid_chmod("go-w,a+r"));
        assert!(!valid_chmod("999") && !valid_chmod("banana"));
    }

    #[test]
    fn stage_names() {
        assert!(valid_stage_name("build-1.x_y"));
        assert!(!valid_stage_name("1build") && !valid_stage_name("a$b"));
    }
}

/// A keyword displayed in upper case without allocating until it is formatted.
#[derive(Clone, Copy)]
struct Upper<'a>(&'a str);

impl std::fmt::Display for Upper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            std::fmt::Write::write_char(f, c.to_ascii_uppercase())?;
        }
        Ok(())
    }
}
