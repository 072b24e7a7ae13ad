//! A resolver on a client's path (a VNet's DNS proxy, a conditional
//! forwarder) as `amldns doctor` meets it: each question, over UDP or TCP,
//! is relayed to a target over UDP, and its reply passed back as is or as
//! the test changes it. On 127.0.0.1 only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::Message;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use super::{IO_TIMEOUT, read_frame, write_frame};

/// What the relay makes of a reply: the question's number (from 0, in the
/// order questions arrived), the question, the target's reply. `None`: no
/// answer.
type Tamper = dyn Fn(usize, &Message, Message) -> Option<Message> + Send + Sync;

pub struct Relay {
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Relay {
    /// Passes every reply on unchanged.
    pub async fn faithful(target: SocketAddr) -> Self {
        Self::start(target, |_, _, reply| Some(reply)).await
    }

    pub async fn start(
        target: SocketAddr,
        tamper: impl Fn(usize, &Message, Message) -> Option<Message> + Send + Sync + 'static,
    ) -> Self {
        let tamper: Arc<Tamper> = Arc::new(tamper);
        let count = Arc::new(AtomicUsize::new(0));
        let mut pair = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                pair = Some((Arc::new(udp), tcp));
                break;
            }
        }
        let (udp, tcp) = pair.expect("a port free for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        let answer = {
            let (tamper, count) = (tamper.clone(), count.clone());
            move |bytes: Vec<u8>| {
                let (tamper, count) = (tamper.clone(), count.clone());
                async move {
                    let q = Message::from_vec(&bytes).ok()?;
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let reply = relay(target, &bytes).await?;
                    tamper(n, &q, reply).map(|m| m.to_vec().unwrap())
                }
            }
        };
        let udp_task = {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                loop {
                    let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                        return;
                    };
                    let (udp, question, answer) = (udp.clone(), buf[..n].to_vec(), answer.clone());
                    tokio::spawn(async move {
                        if let Some(r) = answer(question).await {
                            let _ = udp.send_to(&r, peer).await;
                        }
                    });
                }
            })
        };
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let answer = answer.clone();
                tokio::spawn(async move {
                    while let Ok(Ok(question)) =
                        tokio::time::timeout(IO_TIMEOUT, read_frame(&mut s)).await
                    {
                        let Some(r) = answer(question).await else {
                            continue;
                        };
                        if write_frame(&mut s, &r).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            tasks: vec![udp_task, tcp_task],
        }
    }
}

/// One question to `target` over UDP: its reply, or `None` after
/// [`IO_TIMEOUT`].
async fn relay(target: SocketAddr, question: &[u8]) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.connect(target).await.ok()?;
    socket.send(question).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(IO_TIMEOUT, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}
