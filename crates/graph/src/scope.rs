//! The one ARG/ENV scope of the language, as BuildKit's dispatcher keeps it:
//! - the global scope: automatic platform ARGs, then the ARGs before the first FROM, each a build-arg
//!   if given, else its default expanded in the global scope so far; FROM lines see only this scope;
//! - a stage scope: nothing of the global scope is visible until the stage declares the ARG again
//!   (`ARG NAME` without a default takes the global value); a stage ARG is visible from its
//!   declaration on; ENV (the base image's and the stage's) wins over ARG in expansion;
//! - which ARGs a target uses (for `--call outline`): every ARG a reachable stage declares, and every
//!   global ARG a FROM line reads.

use lighter_dockerfile::shell::{Env, Lexer};
use lighter_dockerfile::ArgDef;
use std::collections::BTreeMap;

/// Automatic platform ARGs for a build on this host.
pub fn platform_args() -> BTreeMap<String, String> {
    let (os, arch) = (lighter_oci::HOST_OS, lighter_oci::HOST_ARCH);
    let platform = format!("{os}/{arch}");
    [
        ("TARGETPLATFORM", platform.as_str()),
        ("TARGETOS", os),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", ""),
        ("BUILDPLATFORM", platform.as_str()),
        ("BUILDOS", os),
        ("BUILDARCH", arch),
        ("BUILDVARIANT", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A declared ARG with the value it got (a build-arg, its default, or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgValue {
    pub name: String,
    pub value: Option<String>,
}

/// The global scope (before the first FROM).
#[derive(Debug, Clone)]
pub struct Globals {
    pub lexer: Lexer,
    /// Platform ARGs and the meta ARGs that have a value.
    pub values: BTreeMap<String, String>,
    /// The meta ARGs, in order, with their values.
    pub declared: Vec<ArgValue>,
}

impl Globals {
    /// The global scope of a Dockerfile's meta ARGs with `build_args` overriding defaults.
    /// Each ARG comes with a tag (its instruction's span) that an expansion error returns.
    pub fn new<T: Copy>(
        escape: char,
        meta: &[(&ArgDef, T)],
        build_args: &BTreeMap<String, String>,
    ) -> Result<Globals, (lighter_dockerfile::shell::ShellError, T)> {
        let lexer = Lexer::new(escape);
        let mut values = platform_args();
        let mut declared = Vec::new();
        for (d, tag) in meta {
            let v = match (build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(def)) => Some(
                    lexer
                        .process_word(def, &values)
                        .map_err(|e| (e, *tag))?
                        .value,
                ),
                (None, None) => None,
            };
            if let Some(v) = &v {
                values.insert(d.name.clone(), v.clone());
            }
            declared.push(ArgValue {
                name: d.name.clone(),
                value: v,
            });
        }
        Ok(Globals {
            lexer,
            values,
            declared,
        })
    }

    /// Expands a FROM-line word (base name, `--platform`): globals only. Returns the names it read.
    pub fn expand(
        &self,
        word: &str,
    ) -> Result<(String, Vec<String>), lighter_dockerfile::shell::ShellError> {
        let e = self.lexer.process_word(word, &self.values)?;
        Ok((e.value, e.matched.into_iter().collect()))
    }

    fn is_global(&self, name: &str) -> bool {
        self.declared.iter().any(|d| d.name == name) || platform_args().contains_key(name)
    }
}

/// A stage's scope while it is lowered.
#[derive(Debug, Clone)]
pub struct Scope {
    lexer: Lexer,
    /// ARGs declared in this stage so far (name -> value; declared without value: absent).
    args: BTreeMap<String, String>,
    /// ENV in effect: the base's and the stage's, in order (a later entry wins).
    env: Vec<(String, String)>,
}

impl Scope {
    /// A stage scope over the base's environment.
    pub fn new(lexer: Lexer, env: Vec<(String, String)>) -> Scope {
        Self::with_args(lexer, env, BTreeMap::new())
    }

    /// A stage scope that starts with ARGs already declared (those of a base stage).
    pub fn with_args(
        lexer: Lexer,
        env: Vec<(String, String)>,
        args: BTreeMap<String, String>,
    ) -> Scope {
        Scope { lexer, args, env }
    }

    /// `ARG NAME[=default]` in a stage: a build-arg wins, then the default (expanded in this scope),
    /// then the global value of a global ARG; otherwise the name is declared without a value.
    pub fn declare(
        &mut self,
        d: &ArgDef,
        build_args: &BTreeMap<String, String>,
        globals: &Globals,
    ) -> Result<ArgValue, lighter_dockerfile::shell::ShellError> {
        let v = match (build_args.get(&d.name), &d.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(def)) => Some(self.expand(def)?),
            (None, None) => globals
                .values
                .get(&d.name)
                .cloned()
                .filter(|_| globals.is_global(&d.name)),
        };
        match &v {
            Some(v) => self.args.insert(d.name.clone(), v.clone()),
            None => self.args.remove(&d.name),
        };
        Ok(ArgValue {
            name: d.name.clone(),
            value: v,
        })
    }

    /// `ENV k=v`: the value is expanded first.
    pub fn set_env(&mut self, key: String, value: String) {
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value));
    }

    /// The ENV in effect, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARGs with values, sorted by name (what a RUN sees besides ENV; ENV wins).
    pub fn args(&self) -> &BTreeMap<String, String> {
        &self.args
    }

    /// Expands one word: ENV wins over ARG.
    pub fn expand(&self, word: &str) -> Result<String, lighter_dockerfile::shell::ShellError> {
        Ok(self.lexer.process_word(word, self)?.value)
    }

    /// Expands and splits a word list (EXPOSE, VOLUME in shell form).
    pub fn expand_words(
        &self,
        word: &str,
    ) -> Result<Vec<String>, lighter_dockerfile::shell::ShellError> {
        Ok(self.lexer.process_words(word, self)?.words)
    }
}

impl Env for Scope {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.env.as_slice(), name).or_else(|| self.args.get(name).map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, default: Option<&str>) -> ArgDef {
        ArgDef {
            name: name.into(),
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn globals_then_stage_args_then_env_wins() {
        let (a, b) = (def("V", Some("1")), def("W", Some("${V}2")));
        let g = Globals::new('\\', &[(&a, 1), (&b, 2)], &BTreeMap::new()).unwrap();
        assert_eq!(g.values["W"], "12");
        assert_eq!(g.expand("img:$W").unwrap().0, "img:12");
        let mut s = Scope::new(Lexer::new('\\'), vec![("PATH".into(), "/bin".into())]);
        // A global is invisible in a stage until declared again.
        assert_eq!(s.expand("[$V]").unwrap(), "[]");
        s.declare(&def("V", None), &BTreeMap::new(), &g).unwrap();
        assert_eq!(s.expand("[$V]").unwrap(), "[1]");
        // A build-arg wins over a default; ENV wins over the ARG.
        let over: BTreeMap<_, _> = [("X".to_string(), "cli".to_string())].into();
        s.declare(&def("X", Some("dflt")), &over, &g).unwrap();
        assert_eq!(s.expand("$X").unwrap(), "cli");
        s.set_env("X".into(), "env".into());
        assert_eq!(s.expand("$X").unwrap(), "env");
        // A stage ARG that is not global and has no value stays unset.
        let v = s.declare(&def("NOPE", None), &BTreeMap::new(), &g).unwrap();
        assert_eq!(v.value, None);
        assert_eq!(s.expand("[$TARGETARCH]").unwrap(), "[]");
        s.declare(&def("TARGETARCH", None), &BTreeMap::new(), &g)
            .unwrap();
        assert_eq!(s.expand("$TARGETARCH").unwrap(), lighter_oci::HOST_ARCH);
    }
}
