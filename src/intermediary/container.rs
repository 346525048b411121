//! Real programs from container images (the `containers` feature), through testcontainers.
//!
//! A hop written `nginx: default@nginx:1.27` (or any real hop under `--backend containers`) runs the same
//! program definition as a local one ([`Program`]): the same rendered config in the same private prefix,
//! the same argv and environment, the same readiness nonce. What changes is where the program runs:
//!
//! - the image's [`Program::binary`] is the entrypoint, the argv its command;
//! - the prefix is bind-mounted at its own path, so every path the config names is the same inside;
//! - the container shares the host's network (`--network host`, Linux), so the config's
//!   `listen 127.0.0.1:PORT` is the hop's port on the host's loopback, and the upstream `127.0.0.1:PORT`
//!   is the origin or the hop behind it; nothing is published on any other address;
//! - it runs as ssegate's own user and group, so what it writes in the prefix stays removable;
//! - it carries the labels `ssegate.hop` (the hop's label) and `ssegate.owner` (`<pid>.<start time>` of
//!   this ssegate). Dropping the hop removes the container; Ctrl-C and SIGTERM remove every container of
//!   this process ([`remove_owned`]); containers a killed ssegate left behind are removed by the next one
//!   that starts a container ([`sweep_stale`]), and can be found with
//!   `docker ps -a --filter label=ssegate.hop`.
//!
//! Before a case or chain runs, [`unavailable`] says why it cannot: the engine does not answer within
//! [`PING_WITHIN`], or the image is neither present nor pullable. Such a case is skipped with that reason.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::wait::ExitWaitStrategy;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::HopError;
use super::process::{Program, split_image};

/// How long the engine has to answer a ping.
pub const PING_WITHIN: Duration = Duration::from_secs(5);
/// How long pulling an image that is not present may take.
const PULL_WITHIN: Duration = Duration::from_secs(300);
/// How long creating and starting a container may take (the program's own readiness comes after).
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long asking an image's program for its version may take.
const VERSION_WITHIN: Duration = Duration::from_secs(30);
/// How long removing this process's containers may take on Ctrl-C.
const REMOVE_WITHIN: Duration = Duration::from_secs(15);
/// Bytes of a container's output kept for its log tail.
const LOG_BYTES: usize = 64 << 10;

/// The label every hop container carries, with the hop's label as its value.
pub const HOP_LABEL: &str = "ssegate.hop";
/// The label naming the ssegate process that owns a container (`<pid>.<start time>`).
pub const OWNER_LABEL: &str = "ssegate.owner";

/// The engine ssegate talks to, for messages: `$DOCKER_HOST`, or Docker's default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn client() -> Result<Docker, String> {
    Docker::connect_with_defaults().map_err(|e| {
        format!(
            "failed to reach the Docker engine at {}: {e}",
            docker_host()
        )
    })
}

/// Why `image` cannot run here (no engine, or the image is neither present nor pullable), or None.
/// Asked once per image per process; usable from sync code and from inside a runtime.
pub fn unavailable(image: &str) -> Option<String> {
    if let Some(known) = cached(image) {
        return known;
    }
    let owned = image.to_string();
    let found = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("failed to start a runtime to ask the Docker engine: {e}"))?;
        rt.block_on(ensure(&owned))
    })
    .join()
    .unwrap_or_else(|_| Err("failed to ask the Docker engine: its thread panicked".into()))
    .err();
    remember(image, found.clone());
    found
}

/// [`unavailable`] for async code.
pub async fn unavailable_async(image: &str) -> Option<String> {
    if let Some(known) = cached(image) {
        return known;
    }
    let found = ensure(image).await.err();
    remember(image, found.clone());
    found
}

static AVAILABILITY: Mutex<BTreeMap<String, Option<String>>> = Mutex::new(BTreeMap::new());

fn cached(image: &str) -> Option<Option<String>> {
    AVAILABILITY.lock().ok()?.get(image).cloned()
}

fn remember(image: &str, why: Option<String>) {
    if let Ok(mut m) = AVAILABILITY.lock() {
        m.insert(image.to_string(), why);
    }
}

/// The engine answers, and `image` is present or has just been pulled.
async fn ensure(image: &str) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err(
            "the container backend shares the host's network (`--network host`), which ssegate \
             supports on Linux only"
                .into(),
        );
    }
    let (name, tag) = split_image(image)?;
    let docker = client()?;
    engine(&docker).await?;
    if matches!(
        tokio::time::timeout(PING_WITHIN, docker.inspect_image(image)).await,
        Ok(Ok(_))
    ) {
        return Ok(());
    }
    let pull = GenericImage::new(name, tag).pull_image();
    match tokio::time::timeout(PULL_WITHIN, pull).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "image `{image}` is not present at {} and pulling it failed: {}",
            docker_host(),
            crate::probe::error_chain(&e)
        )),
        Err(_) => Err(format!(
            "image `{image}` is not present at {} and pulling it took more than {} s",
            docker_host(),
            PULL_WITHIN.as_secs()
        )),
    }
}

/// The engine answers a ping (asked once per process: a dead engine costs one [`PING_WITHIN`]).
async fn engine(docker: &Docker) -> Result<(), String> {
    static ANSWER: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    ANSWER
        .get_or_init(|| async {
            match tokio::time::timeout(PING_WITHIN, docker.ping()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!(
                    "the Docker engine at {} does not answer: {e}",
                    docker_host()
                )),
                Err(_) => Err(format!(
                    "the Docker engine at {} did not answer within {} s",
                    docker_host(),
                    PING_WITHIN.as_secs()
                )),
            }
        })
        .await
        .clone()
}

/// `<name>/<version>` of the program in `image`, from its version command run in a one-off container
/// (asked once per image per process), or None when it cannot be told.
pub async fn version(program: &Program, image: &str) -> Option<String> {
    static SEEN: Mutex<BTreeMap<String, Option<String>>> = Mutex::new(BTreeMap::new());
    if let Some(v) = SEEN.lock().ok().and_then(|m| m.get(image).cloned()) {
        return v;
    }
    let ask = async {
        let (name, tag) = split_image(image).ok()?;
        let c = GenericImage::new(name, tag)
            .with_entrypoint(program.binary)
            .with_wait_for(WaitFor::Exit(ExitWaitStrategy::new()))
            .with_cmd(program.version_args.iter().copied())
            .with_network("host")
            .with_labels(labels(&format!("{} version", program.name)))
            .start()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&c.stderr_to_vec().await.unwrap_or_default())
            .into_owned()
            + " "
            + &String::from_utf8_lossy(&c.stdout_to_vec().await.unwrap_or_default());
        let _ = c.rm().await;
        program.version_word.find(program.name, &text)
    };
    let found = tokio::time::timeout(VERSION_WITHIN, ask)
        .await
        .ok()
        .flatten();
    if let Ok(mut m) = SEEN.lock() {
        m.insert(image.to_string(), found.clone());
    }
    found
}

fn labels(hop: &str) -> [(String, String); 2] {
    [
        (HOP_LABEL.to_string(), hop.to_string()),
        (OWNER_LABEL.to_string(), crate::proc::owner_tag()),
    ]
}

/// What the container backend needs to start one program.
pub struct Spec<'a> {
    pub image: &'a str,
    pub program: &'a Program,
    /// The hop's label, for the `ssegate.hop` label.
    pub label: &'a str,
    /// The name in messages (`nginx (default)`).
    pub name: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The private prefix, mounted at its own path.
    pub prefix: &'a Path,
}

/// A started container, watched for its exit.
pub struct Started {
    container: Option<ContainerAsync<GenericImage>>,
    id: String,
    exited: Arc<Mutex<Option<String>>>,
    watcher: tokio::task::JoinHandle<()>,
    stderr_log: PathBuf,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").field("id", &self.id).finish()
    }
}

/// Create and start the container; its output goes to `<prefix>/stderr.log` when it exits (and when
/// [`Started::save_logs`] is asked), as a local program's stderr does.
pub async fn start(spec: Spec<'_>) -> Result<Started, HopError> {
    let fail = |why: String| HopError::Unavailable {
        program: spec.name.to_string(),
        why,
    };
    if let Some(why) = unavailable_async(spec.image).await {
        return Err(fail(why));
    }
    USED.store(true, std::sync::atomic::Ordering::SeqCst);
    sweep_stale().await;
    let (name, tag) = split_image(spec.image).map_err(fail)?;
    let prefix = spec.prefix.display().to_string();
    let ids = format!("{}:{}", unsafe { libc::geteuid() }, unsafe {
        libc::getegid()
    });
    let mut req = GenericImage::new(name, tag)
        .with_entrypoint(spec.program.binary)
        .with_wait_for(WaitFor::Nothing)
        .with_cmd(spec.args.clone())
        .with_network("host")
        .with_mount(Mount::bind_mount(prefix.clone(), prefix))
        .with_user(ids)
        .with_labels(labels(spec.label))
        .with_startup_timeout(START_WITHIN);
    // The descriptor limit a local program inherits (a load raises it before the chain starts), not the
    // engine's default.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        req = req.with_ulimit("nofile", lim.rlim_cur as i64, Some(lim.rlim_max as i64));
    }
    for (k, v) in &spec.env {
        req = req.with_env_var(k.clone(), v.clone());
    }
    let container = req.start().await.map_err(|e| HopError::Container {
        program: spec.name.to_string(),
        source: Box::new(e),
    })?;
    let id = container.id().to_string();
    let exited = Arc::new(Mutex::new(None));
    let stderr_log = spec.prefix.join("stderr.log");
    let watcher = tokio::spawn(watch(id.clone(), Arc::clone(&exited), stderr_log.clone()));
    Ok(Started {
        container: Some(container),
        id,
        exited,
        watcher,
        stderr_log,
    })
}

/// Wait for the container's exit; then save its output and record its status.
async fn watch(id: String, exited: Arc<Mutex<Option<String>>>, log: PathBuf) {
    let Ok(docker) = client() else {
        return;
    };
    let status = match docker.wait_container(&id, None).next().await {
        Some(Ok(r)) => format!("exit status: {}", r.status_code),
        Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError {
            code,
            ..
        })) => format!("exit status: {code}"),
        Some(Err(e)) => format!("an unknown status (the engine said: {e})"),
        None => "an unknown status".into(),
    };
    save_logs(&docker, &id, &log).await;
    if let Ok(mut e) = exited.lock() {
        *e = Some(status);
    }
}

async fn save_logs(docker: &Docker, id: &str, to: &Path) {
    let opts = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut out = Vec::new();
    let mut logs = docker.logs(id, Some(opts));
    let collect = async {
        while let Some(Ok(chunk)) = logs.next().await {
            out.extend_from_slice(&chunk.into_bytes());
            if out.len() > LOG_BYTES {
                let cut = out.len() - LOG_BYTES;
                out.drain(..cut);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
    if !out.is_empty() {
        let _ = std::fs::write(to, &out);
    }
}

impl Started {
    /// The exit status once the container has exited.
    pub fn exited(&self) -> Option<String> {
        self.exited.lock().ok().and_then(|e| e.clone())
    }

    /// Write the container's output so far to `<prefix>/stderr.log`, for a log tail.
    pub async fn save_logs(&self) {
        if let Ok(docker) = client() {
            save_logs(&docker, &self.id, &self.stderr_log).await;
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.watcher.abort();
        let Some(c) = self.container.take() else {
            return;
        };
        // testcontainers removes the container when it is dropped, which needs a runtime: inside one it
        // blocks this thread until the removal is done; outside one, a runtime is entered for it.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(c);
        } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            let _entered = rt.enter();
            drop(c);
        }
    }
}

/// A running hop's container and the prefix mounted into it; dropping it removes the container, then
/// the prefix.
#[derive(Debug)]
pub struct Handle {
    pub(super) started: Started,
    pub(super) name: String,
    pub(super) log: PathBuf,
    pub(super) _dir: tempfile::TempDir,
}

impl Handle {
    /// Fail if the container has exited.
    pub fn check_alive(&self) -> Result<(), HopError> {
        match self.started.exited() {
            Some(status) => Err(HopError::Exited {
                program: self.name.clone(),
                status,
                log: crate::proc::tail(&self.log, 20),
            }),
            None => Ok(()),
        }
    }
}

/// Remove the hop containers that an ssegate which is no longer running left behind (it was killed
/// before it could remove them). Done once per process, before its first container starts.
pub async fn sweep_stale() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(docker) = client() else {
                return;
            };
            for (id, owner) in owned_containers(&docker, None).await {
                if !crate::proc::owner_alive(&owner) {
                    remove(&docker, &id).await;
                }
            }
        })
        .await;
}

/// `(id, owner)` of every hop container (`owner`: only this owner's).
async fn owned_containers(docker: &Docker, owner: Option<&str>) -> Vec<(String, String)> {
    let label = match owner {
        Some(o) => format!("{OWNER_LABEL}={o}"),
        None => OWNER_LABEL.to_string(),
    };
    let filters = HashMap::from([("label", vec![label])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(Ok(list)) = tokio::time::timeout(PING_WITHIN, docker.list_containers(Some(opts))).await
    else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|c| {
            let owner = c.labels.as_ref()?.get(OWNER_LABEL)?.clone();
            Some((c.id?, owner))
        })
        .collect()
}

async fn remove(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = tokio::time::timeout(PING_WITHIN, docker.remove_container(id, Some(opts))).await;
}

/// Whether this process has started a container (only then does Ctrl-C ask the engine for its own).
static USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Remove every container this process owns, at once (Ctrl-C, SIGTERM: a start cut short may have left
/// one that no hop holds yet). Returns how many were removed. Blocks for at most [`REMOVE_WITHIN`].
pub fn remove_owned() -> usize {
    if !USED.load(std::sync::atomic::Ordering::SeqCst) {
        return 0;
    }
    let run = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let docker = client().ok()?;
            let job = async {
                let mine = owned_containers(&docker, Some(&crate::proc::owner_tag())).await;
                for (id, _) in &mine {
                    remove(&docker, id).await;
                }
                mine.len()
            };
            tokio::time::timeout(REMOVE_WITHIN, job).await.ok()
        })
    };
    std::thread::spawn(run).join().ok().flatten().unwrap_or(0)
}
