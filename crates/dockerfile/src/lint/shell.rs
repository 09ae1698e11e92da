//! RUN commands as a shell sees them, for the lint rules: the simple commands of a script (name,
//! arguments, the assignments before it), wherever they sit — `&&`/`||` lists, pipelines, subshells,
//! `{ }` groups, `if`/`for`/`while`/`until`/`case` bodies, functions, and the scripts of `sh -c`.
//! Parsed by brush-parser (MIT, the parser of the brush shell), not by regular expressions, so text
//! that only looks like a command (`echo "pip install x"`, a PowerShell `Write-Host '... pip install'`)
//! is not one. A script that does not parse as POSIX sh yields nothing: rules then stay silent rather
//! than guess.

use brush_parser::ast;

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The command's base name (`/usr/bin/apt-get` -> `apt-get`), after wrappers (`sudo`, `env`,
    /// `exec`, `time`, `nice`, `command`) and with `python -m pip` read as `pip`.
    pub name: String,
    /// The words after the name, unquoted.
    pub args: Vec<String>,
    /// `NAME=value` assignments before the command (or given to `env`).
    pub env: Vec<(String, String)>,
    /// Whether the command is part of a pipeline of two or more commands.
    pub piped: bool,
    /// The wrappers it ran under (`sudo`, `env`, ...), outermost first.
    pub wrappers: Vec<String>,
}

impl Cmd {
    /// Whether an argument is `flag` (or `flag=...`).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args
            .iter()
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    }

    /// The first argument that is not an option (for `apt-get -y install x`: `install`).
    pub fn subcommand(&self) -> Option<&str> {
        self.args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str)
    }
}

/// Depth of `sh -c` scripts followed inside one another.
const MAX_NESTING: usize = 4;

/// The simple commands of `script`, or `None` when it is not POSIX sh.
pub fn commands(script: &str) -> Option<Vec<Cmd>> {
    let mut out = Vec::new();
    parse_into(script, 0, &mut out)?;
    Some(out)
}

fn parse_into(script: &str, depth: usize, out: &mut Vec<Cmd>) -> Option<()> {
    let options = brush_parser::ParserOptions {
        sh_mode: true,
        ..Default::default()
    };
    let mut p = brush_parser::Parser::new(std::io::BufReader::new(script.as_bytes()), &options);
    let program = p.parse_program().ok()?;
    for cc in &program.complete_commands {
        list(cc, depth, out);
    }
    Some(())
}

fn list(l: &ast::CompoundList, depth: usize, out: &mut Vec<Cmd>) {
    for ast::CompoundListItem(and_or, _) in &l.0 {
        pipeline(&and_or.first, depth, out);
        for next in &and_or.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => pipeline(p, depth, out),
            }
        }
    }
}

fn pipeline(p: &ast::Pipeline, depth: usize, out: &mut Vec<Cmd>) {
    let piped = p.seq.len() > 1;
    for c in &p.seq {
        command(c, piped, depth, out);
    }
}

fn command(c: &ast::Command, piped: bool, depth: usize, out: &mut Vec<Cmd>) {
    match c {
        ast::Command::Simple(s) => simple(s, piped, depth, out),
        ast::Command::Compound(cc, _) => compound(cc, depth, out),
        ast::Command::Function(f) => compound(&f.body.0, depth, out),
        ast::Command::ExtendedTest(..) => {}
    }
}

fn compound(c: &ast::CompoundCommand, depth: usize, out: &mut Vec<Cmd>) {
    use ast::CompoundCommand as C;
    match c {
        C::BraceGroup(b) => list(&b.list, depth, out),
        C::Subshell(s) => list(&s.list, depth, out),
        C::ForClause(f) => list(&f.body.list, depth, out),
        C::WhileClause(w) | C::UntilClause(w) => {
            list(&w.0, depth, out);
            list(&w.1.list, depth, out);
        }
        C::IfClause(i) => {
            list(&i.condition, depth, out);
            list(&i.then, depth, out);
            for e in i.elses.iter().flatten() {
                if let Some(c) = &e.condition {
                    list(c, depth, out);
                }
                list(&e.body, depth, out);
            }
        }
        C::CaseClause(cs) => {
            for item in &cs.cases {
                if let Some(l) = &item.cmd {
                    list(l, depth, out);
                }
            }
        }
        C::Arithmetic(_) | C::ArithmeticForClause(_) | C::Coprocess(_) => {}
    }
}

/// A word without its quotes and backslash escapes (expansions stay as written).
fn unquote(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let (mut single, mut double) = (false, false);
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn simple(s: &ast::SimpleCommand, piped: bool, depth: usize, out: &mut Vec<Cmd>) {
    use ast::CommandPrefixOrSuffixItem as I;
    let mut env = Vec::new();
    for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
        if let I::AssignmentWord(_, w) = item {
            let w = unquote(&w.value);
            if let Some((k, v)) = w.split_once('=') {
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    let mut words: Vec<String> = s
        .word_or_name
        .iter()
        .map(|w| unquote(&w.value))
        .chain(
            s.suffix
                .iter()
                .flat_map(|x| x.0.iter())
                .filter_map(|i| match i {
                    I::Word(w) => Some(unquote(&w.value)),
                    I::AssignmentWord(_, w) => Some(unquote(&w.value)),
                    _ => None,
                }),
        )
        .collect();
    // Wrappers run the command that follows them (their own options and, for env, assignments).
    let mut wrappers = Vec::new();
    loop {
        let Some(first) = words.first() else { return };
        let base = first.rsplit('/').next().unwrap_or(first).to_string();
        match base.as_str() {
            "sudo" | "exec" | "time" | "nice" | "command" | "env" | "nohup" => {
                words.remove(0);
                wrappers.push(base.clone());
                while let Some(w) = words.first() {
                    if w.starts_with('-') {
                        words.remove(0);
                    } else if base == "env" && w.contains('=') {
                        let w = words.remove(0);
                        if let Some((k, v)) = w.split_once('=') {
                            env.push((k.to_string(), v.to_string()));
                        }
                    } else {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
    let Some(first) = words.first() else { return };
    let mut name = first.rsplit('/').next().unwrap_or(first).to_string();
    let mut args: Vec<String> = words[1..].to_vec();
    // `python -m pip ...` is pip.
    if name.starts_with("python")
        && args.len() >= 2
        && args[0] == "-m"
        && args[1].starts_with("pip")
    {
        name = "pip".into();
        args.drain(..2);
    }
    // `sh -c 'script'`: the script's own commands.
    if matches!(name.as_str(), "sh" | "bash" | "dash" | "ash") && depth < MAX_NESTING {
        if let Some(i) = args.iter().position(|a| a == "-c") {
            if let Some(script) = args.get(i + 1) {
                if parse_into(script, depth + 1, out).is_some() {
                    return;
                }
            }
        }
    }
    out.push(Cmd {
        name,
        args,
        env,
        piped,
        wrappers,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        commands(s)
            .unwrap()
            .into_iter()
            .map(|c| {
                format!("{} {}", c.name, c.args.join(" "))
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn commands_are_found_where_the_shell_runs_them() {
        assert_eq!(
            names("apt-get update && sudo apt-get -y --no-install-recommends install curl || true"),
            [
                "apt-get update",
                "apt-get -y --no-install-recommends install curl",
                "true"
            ]
        );
        assert_eq!(
            names("if [ -f x ]; then pip install 'a==1'; fi; for f in a b; do (cd $f && npm ci); done"),
            ["[ -f x ]", "pip install a==1", "cd $f", "npm ci"]
        );
        assert_eq!(
            names("env A=1 /usr/bin/python3 -m pip install x | tee log"),
            ["pip install x", "tee log"]
        );
        assert_eq!(names("sh -c \"apk add curl\""), ["apk add curl"]);
        // Text that only looks like a command is an argument.
        assert_eq!(names("echo 'pip install x'"), ["echo pip install x"]);
        let c = &commands("PIP_NO_CACHE_DIR=1 pip install x | cat").unwrap()[0];
        assert_eq!(c.env, [("PIP_NO_CACHE_DIR".to_string(), "1".to_string())]);
        assert!(c.piped && c.subcommand() == Some("install"));
        // Not sh: nothing.
        assert!(commands("if then fi )").is_none());
    }
}
