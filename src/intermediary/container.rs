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
//! - it runs as ssegate's own user and group, so what it writes in the prefix stays removable.
//!
//! **Lifecycle.** testcontainers creates and starts the container; removing it is ssegate's own, because
//! testcontainers' removal on drop blocks a runtime thread with no deadline (a hang when a runtime shuts
//! down) and is turned off by `TESTCONTAINERS_COMMAND=keep`. Every container carries four labels:
//! `ssegate.hop` (the hop's label), `ssegate.owner` (`<pid>.<start time>` of this ssegate),
//! `ssegate.space` (the boot and PID namespace that pid belongs to) and `ssegate.start` (one start).
//!
//! - Dropping a hop hands its container to the reaper, a thread with its own runtime that removes it
//!   (each removal has a deadline), so a drop never blocks, inside a runtime or outside one.
//! - A start that fails or is cancelled after the engine created the container (a missing binary, a
//!   deadline) hands its `ssegate.start` label to the reaper, which removes whatever carries it.
//! - At every exit [`finish`] waits for the reaper (at most [`REMOVE_WITHIN`]), then removes anything
//!   still labelled with this process; Ctrl-C and SIGTERM do the same ([`remove_owned`]).
//! - What a killed ssegate left behind is removed by the next one that starts a container
//!   ([`sweep_stale`]): only containers of its own boot and PID namespace whose owner is gone, never
//!   those of another host or PID namespace sharing the engine. `docker ps -a --filter
//!   label=ssegate.hop` finds them all.
//!
//! Before a case or chain runs, [`unavailable`] says why it cannot: the engine does not answer within
//! [`PING_WITHIN`] (asked twice), it cannot reach this machine's loopback (rootless, Docker Desktop, a
//! remote engine), or the image is neither present nor pullable. Such a case is skipped with that
//! reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::HopError;
use super::program::{Answers, Program, split_image};

/// How long the engine has to answer a ping (a ping that runs out of time is asked once more).
pub const PING_WITHIN: Duration = Duration::from_secs(5);
/// How long pulling an image that is not present may take.
const PULL_WITHIN: Duration = Duration::from_secs(300);
/// How long creating and starting a container may take (the program's own readiness comes after).
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long asking an image's program for its version may take.
const VERSION_WITHIN: Duration = Duration::from_secs(30);
/// How long removing one container may take.
const REMOVE_ONE_WITHIN: Duration = Duration::from_secs(10);
/// How long removing what this process still owns may take at exit, on Ctrl-C or SIGTERM.
pub const REMOVE_WITHIN: Duration = Duration::from_secs(15);
/// Bytes of a container's output kept for its log tail.
const LOG_BYTES: usize = 64 << 10;

/// The label every hop container carries, with the hop's label as its value.
pub const HOP_LABEL: &str = "ssegate.hop";
/// The label naming the ssegate process that owns a container (`<pid>.<start time>`).
pub const OWNER_LABEL: &str = "ssegate.owner";
/// The label naming the boot and PID namespace the owner's pid belongs to ([`crate::proc::space_tag`]).
pub const SPACE_LABEL: &str = "ssegate.space";
/// The label naming one start, so that a start cut short can remove what the engine created for it.
pub const START_LABEL: &str = "ssegate.start";

/// The engine ssegate talks to, for messages: `$DOCKER_HOST`, or Docker's default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// The engine client: testcontainers' own (the one that creates the containers), so that every request
/// goes to the engine it chose; made once per process. Its connections are not pooled, so it serves any
/// runtime.
async fn client() -> Result<Docker, String> {
    static CLIENT: tokio::sync::OnceCell<Docker> = tokio::sync::OnceCell::const_new();
    CLIENT
        .get_or_try_init(testcontainers::core::client::docker_client_instance)
        .await
        .cloned()
        .map_err(|e| {
            format!(
                "failed to reach the Docker engine at {}: {}",
                docker_host(),
                crate::error::error_chain(&e)
            )
        })
}

/// Why `image` cannot run here (no engine, an engine that cannot reach this machine's loopback, or the
/// image is neither present nor pullable), or None. Asked once per image per process; usable from sync
/// code and from inside a runtime.
pub fn unavailable(image: &str) -> Option<String> {
    if let Some(known) = AVAILABILITY.get(image) {
        return known;
    }
    let owned = image.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("failed to start a runtime to ask the Docker engine: {e}"))?;
        Ok::<_, String>(rt.block_on(unavailable_async(&owned)))
    })
    .join()
    .unwrap_or_else(|_| Err("failed to ask the Docker engine: its thread panicked".into()))
    .unwrap_or_else(Some)
}

/// [`unavailable`] for async code.
pub async fn unavailable_async(image: &str) -> Option<String> {
    if let Some(known) = AVAILABILITY.get(image) {
        return known;
    }
    AVAILABILITY.put(image, ensure(image).await.err())
}

static AVAILABILITY: Answers = Answers::new();

/// The engine answers and can run a hop here, and `image` is present or has just been pulled.
async fn ensure(image: &str) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err(
            "the container backend shares the host's network (`--network host`), which ssegate \
             supports on Linux only"
                .into(),
        );
    }
    let (name, tag) = split_image(image)?;
    let docker = client().await?;
    engine(&docker).await?;
    let look_up = format!("look up image `{image}`");
    match asked(&look_up, docker.inspect_image(image)).await? {
        Ok(_) => return Ok(()),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(failed(&look_up, &e)),
    }
    let pull = GenericImage::new(name, tag).pull_image();
    match tokio::time::timeout(PULL_WITHIN, pull).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "image `{image}` is not present at {} and pulling it failed: {}",
            docker_host(),
            crate::error::error_chain(&e)
        )),
        Err(_) => Err(format!(
            "image `{image}` is not present at {} and pulling it took more than {} s",
            docker_host(),
            PULL_WITHIN.as_secs()
        )),
    }
}

/// `request`'s own answer within [`PING_WITHIN`], or `failed to WHAT at HOST: no answer within N s`.
async fn asked<T>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, DockerError>>,
) -> Result<Result<T, DockerError>, String> {
    tokio::time::timeout(PING_WITHIN, request)
        .await
        .map_err(|_| {
            format!(
                "failed to {what} at {}: no answer within {} s",
                docker_host(),
                PING_WITHIN.as_secs()
            )
        })
}

/// `failed to WHAT at HOST: CAUSE`.
fn failed(what: &str, e: &DockerError) -> String {
    format!(
        "failed to {what} at {}: {}",
        docker_host(),
        crate::error::error_chain(e)
    )
}

/// The engine answers a ping and runs containers on this machine's own network (asked once per process:
/// a dead engine costs at most two [`PING_WITHIN`]).
async fn engine(docker: &Docker) -> Result<(), String> {
    static ANSWER: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    ANSWER
        .get_or_init(|| async {
            // An engine on another machine is refused before anything is sent to it.
            let host = docker_host();
            if is_remote(&host) {
                return Err(cannot_reach_loopback(&host, "", &[]).unwrap_or_default());
            }
            let mut tries = 0;
            loop {
                tries += 1;
                match tokio::time::timeout(PING_WITHIN, docker.ping()).await {
                    Ok(Ok(_)) => break,
                    Ok(Err(e)) => {
                        return Err(format!(
                            "the Docker engine at {} does not answer: {}",
                            docker_host(),
                            crate::error::error_chain(&e)
                        ));
                    }
                    Err(_) if tries < 2 => continue,
                    Err(_) => {
                        return Err(format!(
                            "the Docker engine at {} did not answer twice within {} s",
                            docker_host(),
                            PING_WITHIN.as_secs()
                        ));
                    }
                }
            }
            let about = "ask the Docker engine about itself";
            let info = asked(about, docker.info())
                .await?
                .map_err(|e| failed(about, &e))?;
            let options = info.security_options.unwrap_or_default();
            cannot_reach_loopback(
                &host,
                info.operating_system.as_deref().unwrap_or_default(),
                &options,
            )
            .map_or(Ok(()), Err)
        })
        .await
        .clone()
}

/// Why an engine cannot run a hop on this machine's loopback (its containers' host network is another
/// one), from the engine's address, its operating system and its security options; None when it can.
fn cannot_reach_loopback(host: &str, os: &str, security: &[String]) -> Option<String> {
    let why = if security.iter().any(|o| o.contains("name=rootless")) {
        "is rootless: its containers' host network is the engine's own namespace"
    } else if os.contains("Docker Desktop") {
        "is Docker Desktop: its containers run in a virtual machine with a network of its own"
    } else if is_remote(host) {
        "is on another machine, and so is its containers' host network"
    } else {
        return None;
    };
    Some(format!(
        "the Docker engine at {host} {why}; ssegate's origin and hops listen on this machine's \
         loopback, so the container backend needs a rootful engine on this machine (or use --backend \
         local)"
    ))
}

/// Whether an engine address (`tcp://…`, `ssh://…`) names another machine.
fn is_remote(host: &str) -> bool {
    let Some((scheme, rest)) = host.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "tcp" | "http" | "https" | "ssh") {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let name = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    !(name == "localhost" || name == "::1" || name.starts_with("127."))
}

/// `<name>/<version>` of the program in `image`, from its version command run in a one-off container
/// (asked once per image per process), or None when it cannot be told.
pub async fn version(program: &Program, image: &str) -> Option<String> {
    static SEEN: Answers = Answers::new();
    if let Some(v) = SEEN.get(image) {
        return v;
    }
    // Removed at once once it has answered; by its start label when it failed or ran out of time.
    let start = StartGuard::new();
    let ask = async {
        let (name, tag) = split_image(image).ok()?;
        let docker = client().await.ok()?;
        // Not waited for by testcontainers: a handle it drops itself (a wait that fails or is cut
        // short) would block on its removal. Removal is ours (the module's doc).
        let c = GenericImage::new(name, tag)
            .with_entrypoint(program.binary)
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(program.version_args.iter().copied())
            .with_network("host")
            .with_labels(labels(&format!("{} version", program.name), &start.tag))
            .start()
            .await
            .ok()?;
        let id = c.id().to_string();
        std::mem::forget(c);
        let _ = docker.wait_container(&id, None).next().await;
        let text = String::from_utf8_lossy(&collect_logs(&docker, &id).await).into_owned();
        Some((text, remove(&docker, &id).await))
    };
    let found = match tokio::time::timeout(VERSION_WITHIN, ask).await {
        Ok(Some((text, removed))) => {
            if removed {
                start.disarm();
            }
            program.version_word.find(program.name, &text)
        }
        _ => None,
    };
    SEEN.put(image, found)
}

fn labels(hop: &str, start: &str) -> [(String, String); 4] {
    [
        (HOP_LABEL.to_string(), hop.to_string()),
        (OWNER_LABEL.to_string(), crate::proc::owner_tag()),
        (SPACE_LABEL.to_string(), crate::proc::space_tag()),
        (START_LABEL.to_string(), start.to_string()),
    ]
}

/// One start's label value; dropped armed, it has the reaper remove whatever carries it.
struct StartGuard {
    tag: String,
    armed: bool,
}

impl StartGuard {
    fn new() -> StartGuard {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        USED.store(true, Ordering::SeqCst);
        StartGuard {
            tag: format!(
                "{}.{}",
                crate::proc::owner_tag(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
            armed: true,
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        if self.armed {
            reap(Target::Start(std::mem::take(&mut self.tag)));
        }
    }
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

/// A started container, watched for its exit; dropping it hands the container to the reaper (with the
/// hop's prefix, once [`Handle`] holds it: deleted after the container is gone, not under it).
pub struct Started {
    id: String,
    prefix: Option<tempfile::TempDir>,
    docker: Docker,
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
    let docker = client().await.map_err(fail)?;
    sweep_stale().await;
    let (name, tag) = split_image(spec.image).map_err(fail)?;
    let start = StartGuard::new();
    let prefix = spec.prefix.display().to_string();
    // SAFETY: geteuid and getegid cannot fail.
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
        .with_labels(labels(spec.label, &start.tag))
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
    // A failed or cancelled start leaves `start` armed: what the engine created is removed by its label.
    let container = req.start().await.map_err(|e| HopError::Container {
        program: spec.name.to_string(),
        source: Box::new(e),
    })?;
    let id = container.id().to_string();
    // Removal is ours from here on (the module's doc): testcontainers' handle is let go without its drop.
    std::mem::forget(container);
    start.disarm();
    let exited = Arc::new(Mutex::new(None));
    let stderr_log = spec.prefix.join("stderr.log");
    let watcher = tokio::spawn(watch(
        docker.clone(),
        id.clone(),
        Arc::clone(&exited),
        stderr_log.clone(),
    ));
    Ok(Started {
        id,
        prefix: None,
        docker,
        exited,
        watcher,
        stderr_log,
    })
}

/// Wait for the container's exit; then save its output and record its status.
async fn watch(docker: Docker, id: String, exited: Arc<Mutex<Option<String>>>, log: PathBuf) {
    let status = match docker.wait_container(&id, None).next().await {
        Some(Ok(r)) => format!("exit status: {}", r.status_code),
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
            format!("exit status: {code}")
        }
        Some(Err(e)) => format!(
            "an unknown status (the engine said: {})",
            crate::error::error_chain(&e)
        ),
        None => "an unknown status (the engine ended the wait without one)".into(),
    };
    let out = collect_logs(&docker, &id).await;
    if !out.is_empty() {
        let _ = std::fs::write(&log, &out);
    }
    if let Ok(mut e) = exited.lock() {
        *e = Some(status);
    }
}

/// The container's output so far, stdout and stderr as they came, the last [`LOG_BYTES`] of it (asked
/// for at most 5 s).
async fn collect_logs(docker: &Docker, id: &str) -> Vec<u8> {
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
    out
}

impl Started {
    /// The exit status once the container has exited.
    pub fn exited(&self) -> Option<String> {
        self.exited.lock().ok().and_then(|e| e.clone())
    }

    /// Write the container's output so far to `<prefix>/stderr.log`, for a log tail.
    pub async fn save_logs(&self) {
        let out = collect_logs(&self.docker, &self.id).await;
        if !out.is_empty() {
            let _ = std::fs::write(&self.stderr_log, &out);
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.watcher.abort();
        reap(Target::Id(std::mem::take(&mut self.id), self.prefix.take()));
    }
}

/// A running hop's container and the prefix mounted into it; dropping it has the reaper remove the
/// container, then the prefix.
#[derive(Debug)]
pub struct Handle {
    pub(super) started: Started,
    pub(super) name: String,
    pub(super) log: PathBuf,
    pub(super) dir: Option<tempfile::TempDir>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.started.prefix = self.dir.take();
    }
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

/// What the reaper removes: one container (then the directory mounted into it), or whatever carries one
/// start's label.
enum Target {
    Id(String, Option<tempfile::TempDir>),
    Start(String),
}

enum Job {
    Remove(Target),
    /// Answer once every removal asked before this one has ended.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// The reaper: one thread with its own runtime, started with the first removal, that removes containers
/// concurrently, each within [`REMOVE_ONE_WITHIN`]. None when it could not start (then [`finish`]'s
/// removal by owner label is what removes them).
fn reaper() -> Option<&'static tokio::sync::mpsc::UnboundedSender<Job>> {
    static REAPER: OnceLock<Option<tokio::sync::mpsc::UnboundedSender<Job>>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            std::thread::Builder::new()
                .name("ssegate-reaper".into())
                .spawn(move || rt.block_on(reaper_loop(rx)))
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

fn reap(target: Target) {
    if let Some(tx) = reaper() {
        let _ = tx.send(Job::Remove(target));
    }
}

async fn reaper_loop(mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut work = tokio::task::JoinSet::new();
    let mut waiting: Vec<std::sync::mpsc::SyncSender<()>> = Vec::new();
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                None => break,
                Some(Job::Remove(target)) => {
                    work.spawn(remove_target(target));
                }
                Some(Job::Flush(done)) if work.is_empty() => {
                    let _ = done.send(());
                }
                Some(Job::Flush(done)) => waiting.push(done),
            },
            Some(_) = work.join_next(), if !work.is_empty() => {
                if work.is_empty() {
                    for done in waiting.drain(..) {
                        let _ = done.send(());
                    }
                }
            }
        }
    }
}

async fn remove_target(target: Target) {
    let Ok(docker) = client().await else {
        return;
    };
    match target {
        Target::Id(id, prefix) => {
            remove(&docker, &id).await;
            drop(prefix);
        }
        // The engine may still be creating the container when the start is given up: look twice.
        Target::Start(tag) => {
            for pause in [Duration::ZERO, Duration::from_secs(1)] {
                tokio::time::sleep(pause).await;
                for (id, _) in labelled(&docker, &[format!("{START_LABEL}={tag}")]).await {
                    remove(&docker, &id).await;
                }
            }
        }
    }
}

/// Remove the hop containers that an ssegate which is no longer running left behind (it was killed
/// before it could remove them): only those of this boot and PID namespace, where its pid means what it
/// meant to it. Done once per process, before its first container starts.
pub async fn sweep_stale() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(docker) = client().await else {
                return;
            };
            let space = crate::proc::space_tag();
            // Without a boot id and namespace to tell spaces apart, no owner can be judged gone.
            if space.contains("unknown") {
                return;
            }
            let here = [format!("{SPACE_LABEL}={space}")];
            for (id, owner) in labelled(&docker, &here).await {
                if !crate::proc::owner_alive(&owner) {
                    remove(&docker, &id).await;
                }
            }
        })
        .await;
}

/// `(id, owner)` of every hop container that carries all of `labels` (`key=value`).
async fn labelled(docker: &Docker, labels: &[String]) -> Vec<(String, String)> {
    let mut wanted = vec![OWNER_LABEL.to_string()];
    wanted.extend(labels.iter().cloned());
    let filters = HashMap::from([("label", wanted)]);
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

/// Remove a container, running or not, with its anonymous volumes; whether the engine removed it.
async fn remove(docker: &Docker, id: &str) -> bool {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    matches!(
        tokio::time::timeout(REMOVE_ONE_WITHIN, docker.remove_container(id, Some(opts))).await,
        Ok(Ok(()))
    )
}

/// Whether this process has created a container (only then is the engine asked at exit).
static USED: AtomicBool = AtomicBool::new(false);

/// Remove every container this process still owns, at once (Ctrl-C, SIGTERM: containers that hops still
/// hold, and a start cut short). Returns how many the engine removed. Blocks for at most `within`.
pub fn remove_owned(within: Duration) -> usize {
    if !USED.load(Ordering::SeqCst) {
        return 0;
    }
    let run = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let job = async {
                let docker = client().await.ok()?;
                let mine = labelled(
                    &docker,
                    &[format!("{OWNER_LABEL}={}", crate::proc::owner_tag())],
                )
                .await;
                let removed =
                    futures_util::future::join_all(mine.iter().map(|(id, _)| remove(&docker, id)))
                        .await;
                Some(removed.into_iter().filter(|r| *r).count())
            };
            tokio::time::timeout(within, job).await.ok().flatten()
        })
    };
    std::thread::spawn(run).join().ok().flatten().unwrap_or(0)
}

/// At exit: wait for the removals already handed to the reaper, then remove whatever this process still
/// owns; at most [`REMOVE_WITHIN`] in all. Returns how many the second step removed (containers no hop
/// had let go of yet). The CLI calls it on every exit; a program using the library calls it before it
/// exits, or leaves what remains to the next ssegate's [`sweep_stale`].
pub fn finish() -> usize {
    if !USED.load(Ordering::SeqCst) {
        return 0;
    }
    let deadline = Instant::now() + REMOVE_WITHIN;
    if let Some(tx) = reaper() {
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        if tx.send(Job::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(REMOVE_WITHIN);
        }
    }
    remove_owned(deadline.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_elsewhere_or_rootless_or_in_a_vm_is_refused_with_the_reason() {
        let local = "unix:///tmp/ssegate-docker/docker.sock";
        assert_eq!(
            cannot_reach_loopback(local, "Debian GNU/Linux 12", &[]),
            None
        );
        let rootless = vec![
            "name=seccomp,profile=builtin".into(),
            "name=rootless".into(),
        ];
        let why = cannot_reach_loopback(local, "Debian", &rootless).unwrap();
        assert!(why.contains("is rootless"), "{why}");
        assert!(why.contains(local), "{why}");
        let desktop = cannot_reach_loopback(local, "Docker Desktop", &[]).unwrap();
        assert!(desktop.contains("virtual machine"), "{desktop}");
        assert!(desktop.contains("this machine's loopback"), "{desktop}");
        let remote = cannot_reach_loopback("tcp://10.1.2.3:2376", "Ubuntu", &[]).unwrap();
        assert!(remote.contains("another machine"), "{remote}");
        for here in [
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "tcp://[::1]:2375",
            "ssh://me@127.0.0.1",
        ] {
            assert!(!is_remote(here), "{here}");
        }
        for there in [
            "tcp://docker:2375",
            "ssh://me@build-host",
            "tcp://[fd00::1]:2375",
        ] {
            assert!(is_remote(there), "{there}");
        }
    }

    #[test]
    fn labels_name_the_hop_its_owner_its_space_and_its_start() {
        let l = labels("nginx default@nginx:1.27", "x.1");
        let keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [HOP_LABEL, OWNER_LABEL, SPACE_LABEL, START_LABEL]);
        assert_eq!(l[0].1, "nginx default@nginx:1.27");
        assert_eq!(l[1].1, crate::proc::owner_tag());
        assert_eq!(l[2].1, crate::proc::space_tag());
        assert_eq!(l[3].1, "x.1");
    }
}
