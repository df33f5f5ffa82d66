//! A TCP proxy that can be cut: the network partition of a test. While cut, it neither
//! forwards bytes nor closes connections (packets are silently dropped, like a real partition),
//! and new connections are accepted but never served. `cut_and_close` also closes the
//! connections open at the cut (a peer that resets them). Healing resumes forwarding for new
//! connections; connections that lived through the cut are closed (their streams are broken).
//! It remembers when bytes last went upstream, so a test can cut at a chosen point after the
//! client's last request (e.g. a lease renewal).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A cuttable proxy from a local port to `upstream`.
pub struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    epoch: Arc<AtomicU64>,
    close: tokio::sync::watch::Sender<u64>,
    upload: Arc<Mutex<Option<Instant>>>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (close, _) = tokio::sync::watch::channel(0u64);
        let upload = Arc::new(Mutex::new(None));
        let (c, e, cl, ul) = (cut.clone(), epoch.clone(), close.clone(), upload.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let link = Link {
                    cut: c.clone(),
                    epoch: e.clone(),
                    close: cl.subscribe(),
                    upload: ul.clone(),
                };
                let up = upstream.clone();
                tokio::spawn(async move { serve(client, up, link).await });
            }
        });
        CutProxy {
            port,
            cut,
            epoch,
            close,
            upload,
            task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts dropping everything.
    pub fn cut(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Starts dropping everything and closes the connections open now.
    pub fn cut_and_close(&self) {
        self.cut();
        let e = self.epoch.load(Ordering::SeqCst);
        let _ = self.close.send(e);
    }

    /// When bytes last went from a client to the upstream.
    pub fn last_upload(&self) -> Option<Instant> {
        *self.upload.lock().expect("upload")
    }

    /// Resumes forwarding (for new connections).
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One proxied connection's view of the proxy's state.
struct Link {
    cut: Arc<AtomicBool>,
    epoch: Arc<AtomicU64>,
    close: tokio::sync::watch::Receiver<u64>,
    upload: Arc<Mutex<Option<Instant>>>,
}

async fn serve(mut client: TcpStream, upstream: String, mut link: Link) {
    let (cut, epoch) = (link.cut.clone(), link.epoch.clone());
    let born = epoch.load(Ordering::SeqCst);
    // A partitioned host's connection attempts hang: hold the socket, send nothing.
    while cut.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut b1 = vec![0u8; 16 * 1024];
    let mut b2 = vec![0u8; 16 * 1024];
    let started = epoch.load(Ordering::SeqCst).max(born);
    link.close.mark_unchanged();
    loop {
        let alive = |cut: &AtomicBool, epoch: &AtomicU64| {
            !cut.load(Ordering::SeqCst) && epoch.load(Ordering::SeqCst) == started
        };
        tokio::select! {
            _ = link.close.changed() => return,
            r = cr.read(&mut b1) => {
                let Ok(n) = r else { return };
                if n == 0 { return; }
                // Bytes read during a cut are dropped on the floor.
                while cut.load(Ordering::SeqCst) { tokio::time::sleep(std::time::Duration::from_millis(50)).await; }
                if !alive(&cut, &epoch) { return; }
                if sw.write_all(&b1[..n]).await.is_err() { return; }
                *link.upload.lock().expect("upload") = Some(Instant::now());
            }
            r = sr.read(&mut b2) => {
                let Ok(n) = r else { return };
                if n == 0 { return; }
                while cut.load(Ordering::SeqCst) { tokio::time::sleep(std::time::Duration::from_millis(50)).await; }
                if !alive(&cut, &epoch) { return; }
                if cw.write_all(&b2[..n]).await.is_err() { return; }
            }
        }
    }
}
