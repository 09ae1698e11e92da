//! `lighter login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `lighter logout [SERVER]`,
//! as docker's: the credentials are checked against the registry before they are stored (in the
//! configured credential helper, else `config.json` with mode 0600). The server defaults to
//! Docker Hub.

use super::Context;
use crate::cli::{LoginArgs, LogoutArgs};
use lighter_registry::Credential;
use std::io::BufRead;
use std::process::ExitCode;

/// `SERVER` as a registry domain: `https://host/v1/` and `docker.io` forms accepted.
fn domain_of(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        h => h.to_string(),
    }
}

pub fn run(_ctx: &Context, args: LoginArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = args.server.as_deref().filter(|s| s.starts_with("http://")) {
        anyhow::bail!("lighter login {s}: the scheme is not taken from the server name; for plain HTTP set `http = true` for that host in registries.toml");
    }
    let domain = domain_of(args.server.as_deref());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            anyhow::bail!("lighter login {domain}: give the user name with -u (there is no prompt)")
        }
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            anyhow::bail!("lighter login {domain}: give the password with --password-stdin")
        }
    };
    if password.is_empty() {
        anyhow::bail!("lighter login {domain}: the password is empty");
    }
    let cred = Credential::Basic { username, password };
    let client = super::registry::client()?.with_credential(&domain, cred.clone());
    let r = lighter_oci::Reference {
        domain: domain.clone(),
        path: "library/x".into(),
        tag: None,
        digest: None,
    };
    lighter_registry::Registry::new(&client, &r, true)
        .check_login()
        .map_err(|e| anyhow::anyhow!("login to {domain} failed: {}", e.message))?;
    let where_ = client
        .creds()
        .store(&domain, &cred)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    eprintln!("Credentials stored in {where_}");
    outln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_ctx: &Context, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let domain = domain_of(args.server.as_deref());
    let client = super::registry::client()?;
    let removed = client
        .creds()
        .erase(&domain)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if removed {
        outln!("Removing login credentials for {domain}");
    } else {
        outln!("Not logged in to {domain}");
    }
    Ok(ExitCode::SUCCESS)
}
