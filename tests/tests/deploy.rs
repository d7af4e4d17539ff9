//! The deployable artifacts, checked without Docker or a cluster: every YAML file under
//! `deploy/` parses; every environment variable the compose file and the Kubernetes manifests
//! give a host is a setting of the settings table (or one of [`NOT_SETTINGS`]); no secret
//! setting has a literal value in the manifests (each comes from the Secret, whose example names
//! the same keys); the compose file interpolates only variables `.env.example` defines; the
//! Dockerfile's `ENTRYPOINT` + `CMD` is a `serve` command the host's command line accepts,
//! listening on 0.0.0.0:8080 with `/data`; the probes are `/readyz` (readiness) and `/healthz`
//! (liveness).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use clap::Parser;
use responses_pipe_host::cli::{Cli, Command};
use responses_pipe_host::config::{VALVES, ValveSpec};
use serde::Deserialize as _;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Variables a host may be given that are not settings.
const NOT_SETTINGS: &[&str] = &["RUST_LOG"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every `.yaml`/`.yml` file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The documents of one YAML file, merge keys (`<<`) applied.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value
        })
        .collect()
}

fn setting(name: &str) -> Option<&'static ValveSpec> {
    VALVES.iter().find(|s| s.env_names().any(|n| n == name))
}

fn assert_known(name: &str, whence: &str) {
    assert!(
        setting(name).is_some() || NOT_SETTINGS.contains(&name),
        "{whence} sets {name}, which is neither a setting nor in NOT_SETTINGS"
    );
}

/// The kind's documents across every manifest in `deploy/k8s/`.
fn k8s(kind: &str) -> Vec<Value> {
    yaml_files(&repo().join("deploy/k8s"))
        .iter()
        .flat_map(|p| documents(p))
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn the_deployment() -> Value {
    let mut deployments = k8s("Deployment");
    assert_eq!(deployments.len(), 1, "one Deployment");
    deployments.remove(0)
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = yaml_files(&repo().join("deploy"));
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        assert!(!documents(&file).is_empty(), "{}", file.display());
    }
}

#[test]
fn the_kubernetes_hosts_get_only_settings_and_every_secret_from_the_secret() {
    let deployment = the_deployment();
    let env = container(&deployment)["env"].as_sequence().unwrap();
    let secrets = k8s("Secret");
    let secret = &secrets[0]["stringData"];
    assert!(!env.is_empty());
    for var in env {
        let name = var["name"].as_str().unwrap();
        assert_known(name, "deployment.yaml");
        let from_secret = &var["valueFrom"]["secretKeyRef"];
        if setting(name).is_some_and(ValveSpec::is_secret) {
            assert!(var.get("value").is_none(), "{name} has a literal value");
            assert_eq!(from_secret["name"], "responses-pipe", "{name}");
        }
        if let Some(key) = from_secret["key"].as_str() {
            assert!(
                secret.get(key).is_some(),
                "{name} reads {key}, which secret.example.yaml does not name"
            );
        }
    }
    for (key, value) in secret.as_mapping().unwrap() {
        let key = key.as_str().unwrap();
        assert_known(key, "secret.example.yaml");
        let value = value.as_str().unwrap();
        let placeholder = value.contains("REPLACE-ME") || value.contains("example.internal");
        assert!(
            placeholder,
            "{key} in secret.example.yaml is not a placeholder"
        );
    }
}

#[test]
fn the_probes_are_readiness_on_readyz_and_liveness_on_healthz() {
    let deployment = the_deployment();
    let c = container(&deployment);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let pod = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/data"), "{mounts:?}");
    for kind in ["Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"] {
        assert_eq!(k8s(kind).len(), 1, "one {kind}");
    }
    assert_eq!(
        k8s("HorizontalPodAutoscaler")[0]["apiVersion"],
        "autoscaling/v2"
    );
}

/// The environment of each compose service that runs the host image: (service, [(name, value)]).
fn compose_hosts() -> Vec<(String, Vec<(String, String)>)> {
    let compose = documents(&repo().join("deploy/compose.yaml")).remove(0);
    let mut hosts = Vec::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        if service["image"].as_str() != Some("responses-pipe:local") {
            continue;
        }
        let Value::Mapping(env) = &service["environment"] else {
            panic!("the environment of {name:?} is not a mapping");
        };
        let vars = env
            .iter()
            .map(|(k, v)| {
                let value = v.as_str().unwrap_or_default().to_owned();
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect();
        hosts.push((name.as_str().unwrap().to_owned(), vars));
    }
    hosts
}

#[test]
fn the_compose_hosts_get_only_settings_and_share_their_secrets_from_the_env_file() {
    let hosts = compose_hosts();
    assert_eq!(hosts.len(), 3, "three hosts");
    for (service, vars) in &hosts {
        for (name, value) in vars {
            assert_known(name, service);
            if setting(name).is_some_and(ValveSpec::is_secret) {
                assert!(value.contains("${"), "{service}: {name} is not from .env");
            }
        }
        for shared in [
            "DATABASE_URL",
            "REDIS_URL",
            "PIPE_ID",
            "WEBUI_SECRET_KEY",
            "ARTIFACT_ENCRYPTION_KEY",
        ] {
            assert!(
                vars.iter().any(|(n, _)| n == shared),
                "{service} lacks {shared}"
            );
        }
    }
    // Every `${NAME…}` the compose file interpolates is defined in .env.example.
    let defined: BTreeSet<String> = read("deploy/.env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect();
    let compose = read("deploy/compose.yaml");
    for reference in compose.split("${").skip(1) {
        let name: String = reference
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            defined.contains(&name),
            ".env.example does not define {name}"
        );
    }
}

/// The JSON-array argument of the Dockerfile instruction `instruction`.
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let prefix = format!("{instruction} ");
    let line = dockerfile
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    serde_json::from_str(&line[prefix.len()..]).unwrap()
}

#[test]
fn the_image_runs_serve_on_all_interfaces_port_8080_with_data_in_slash_data() {
    let dockerfile = read("Dockerfile");
    let mut argv = exec_form(&dockerfile, "ENTRYPOINT");
    argv.extend(exec_form(&dockerfile, "CMD"));
    let cli = Cli::try_parse_from(&argv).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("the image does not run serve: {argv:?}");
    };
    assert_eq!(args.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(args.data_dir, Path::new("/data"));
    assert!(dockerfile.lines().any(|l| l == "EXPOSE 8080"));
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("the image names its user");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
}
