//! A tokio runtime whose sockets live in a network namespace. The campaign's clients (the
//! writer beside HAProxy, the observer's direct writers and health probes) must connect from
//! their own hosts, not from the machine's namespace (which has no route to the bridge at
//! all). Rather than spawn a helper process per host, the campaign runs one single-threaded
//! runtime per client host on a thread that first joins the host's namespace with `setns`:
//! namespaces are per thread, and every socket created on that thread (and every thread it
//! spawns, such as tokio's blocking pool) belongs to the namespace.
//!
//! Use it only through [`NsRuntime::run`], which spawns a future on the runtime and awaits it
//! from anywhere: a socket opened on another runtime would be in another namespace.

use std::future::Future;
use std::thread::JoinHandle;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A runtime on its own thread inside namespace `ns`.
pub struct NsRuntime {
    /// The namespace.
    pub ns: String,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NsRuntime {
    /// Starts the thread, joins `/run/netns/<ns>` and builds the runtime.
    pub fn start(ns: &str) -> anyhow::Result<NsRuntime> {
        let path = format!("/run/netns/{ns}");
        let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
        let (tx_handle, rx_handle) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let name = ns.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("rt-{ns}"))
            .spawn(move || {
                let built = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("setns into {name}"))
                    .and_then(|()| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .context("build the namespace runtime")
                    });
                match built {
                    Ok(rt) => {
                        let _ = tx_handle.send(Ok(rt.handle().clone()));
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                        // Tasks still running (writers being stopped) are dropped here.
                        rt.shutdown_timeout(std::time::Duration::from_secs(2));
                    }
                    Err(e) => {
                        let _ = tx_handle.send(Err(e));
                    }
                }
            })
            .context("spawn the namespace runtime thread")?;
        let handle = rx_handle
            .recv()
            .context("the namespace runtime thread died")??;
        Ok(NsRuntime {
            ns: ns.to_string(),
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Runs `fut` on this runtime (inside the namespace) and waits for its result.
    pub async fn run<T, F>(&self, fut: F) -> anyhow::Result<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.handle
            .spawn(fut)
            .await
            .with_context(|| format!("task in namespace {} failed", self.ns))
    }

    /// Spawns `fut` on this runtime without waiting.
    pub fn spawn<T, F>(&self, fut: F) -> tokio::task::JoinHandle<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(fut)
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
