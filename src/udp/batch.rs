//! Datagrams in batches: on Linux one `recvmmsg` takes every query already
//! queued on the socket (up to [`BATCH`]) and one `sendmmsg` sends their
//! answers, so that under load the per-packet system-call cost is shared
//! (the profile of the one-call-per-packet loop had 78% of the server's CPU
//! in the kernel). Elsewhere the same interface does one call per datagram.
//!
//! The socket is a blocking one, drained by a thread of its own: a receive
//! sleeps in the kernel until a datagram comes (or [`WAKE_EVERY`] passes),
//! as the kernel's floor in `benches/load/floor.c` does, with no readiness
//! poll and no empty receive in between. Answers finished by a task on the
//! runtime go out with [`send_now`], which never blocks.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Datagrams taken per receive: enough to drain a busy socket in one call,
/// small enough that the buffers stay in cache (32 × 4 KiB).
const BATCH: usize = 32;

/// The largest query read (the same over TCP); a longer datagram reads as
/// empty and is dropped.
const RECV_BUFFER: usize = crate::wire::MAX_QUERY;
/// Our answers are at most 1232 bytes (the EDNS cap); room to spare.
const SEND_BUFFER: usize = 2048;

/// The longest a receive sleeps before its loop looks whether it should
/// stop: a stop is seen this soon.
pub const WAKE_EVERY: Duration = Duration::from_millis(100);

/// Makes a bound socket ready for `Inbox::recv`: blocking, waking at
/// least every `WAKE_EVERY`.
pub fn prepare(socket: &UdpSocket) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(WAKE_EVERY))
}

/// Received datagrams, valid until the next [`Inbox::recv`].
pub struct Inbox {
    bufs: Box<[[u8; RECV_BUFFER]; BATCH]>,
    got: Vec<(usize, Option<SocketAddr>)>,
}

/// Answers waiting to be sent, written in place by the caller.
pub struct Outbox {
    bufs: Box<[[u8; SEND_BUFFER]; BATCH]>,
    queued: Vec<(usize, SocketAddr)>,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            bufs: Box::new([[0; RECV_BUFFER]; BATCH]),
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl Inbox {
    /// Waits for at least one datagram, and takes it with any others
    /// already queued. The count taken; 0 when [`WAKE_EVERY`] passed with
    /// none.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        match sys::recv(socket, &mut self.bufs, &mut self.got) {
            Ok(()) => Ok(self.got.len()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Datagram `i` of the last receive, and who sent it (`None` for an
    /// address family we cannot answer).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let (len, src) = self.got[i];
        (&self.bufs[i][..len], src)
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bufs: Box::new([[0; SEND_BUFFER]; BATCH]),
            queued: Vec::with_capacity(BATCH),
        }
    }
}

impl Outbox {
    /// The buffer the next answer is written into: one per datagram of a
    /// receive ([`BATCH`] at most), empty once all are queued.
    pub fn next(&mut self) -> &mut [u8] {
        match self.bufs.get_mut(self.queued.len()) {
            Some(buf) => buf,
            None => &mut [],
        }
    }

    /// Queues the `len` bytes written into [`Outbox::next`] for `dst`;
    /// `false` (nothing queued) for a length past that buffer, which would
    /// send memory beyond it, or when every buffer is queued already.
    pub fn push(&mut self, len: usize, dst: SocketAddr) -> bool {
        if len > SEND_BUFFER || self.queued.len() >= BATCH {
            return false;
        }
        self.queued.push((len, dst));
        true
    }

    /// Sends every queued answer, waiting for room in the socket's buffer.
    /// A datagram the kernel refuses (an unreachable address) is lost, as
    /// UDP allows; the rest still go.
    pub fn flush(&mut self, socket: &UdpSocket) {
        let mut done = 0;
        while done < self.queued.len() {
            let sent = sys::send(socket, &self.bufs[done..], &self.queued[done..]);
            match sent {
                Ok(n) => done += n.max(1),
                Err(e) => {
                    tracing::debug!(dst = %self.queued[done].1, "udp send: {e}");
                    done += 1;
                }
            }
        }
        self.queued.clear();
    }
}

/// Sends one datagram, for answers finished by a task on the runtime, which
/// must not block: with the socket's buffer full it is lost, as UDP allows.
pub fn send_now(socket: &UdpSocket, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
    sys::send_now(socket, buf, dst)
}

#[cfg(target_os = "linux")]
mod sys {
    //! `recvmmsg`/`sendmmsg` through libc; std has neither.

    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use super::{BATCH, RECV_BUFFER, SEND_BUFFER};

    pub fn recv(
        socket: &UdpSocket,
        bufs: &mut [[u8; RECV_BUFFER]; BATCH],
        got: &mut Vec<(usize, Option<SocketAddr>)>,
    ) -> io::Result<()> {
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            };
            hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // MSG_WAITFORONE: wait for one (up to the socket's read timeout),
        // then take what else is queued without waiting for more.
        // SAFETY: every pointer in `hdrs` points into `names`, `iovs` or
        // `bufs`, which outlive the call, with the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (hdr, name) in hdrs.iter().zip(&names).take(n as usize) {
            let from = from_sockaddr(name, hdr.msg_hdr.msg_namelen);
            // A datagram longer than the buffer is no query (RFC 1035 §4.2.1,
            // RFC 6891): read as empty, so that it is dropped unanswered.
            let len = if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                hdr.msg_len as usize
            };
            got.push((len, from));
        }
        Ok(())
    }

    pub fn send(
        socket: &UdpSocket,
        bufs: &[[u8; SEND_BUFFER]],
        queued: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        let count = queued.len().min(bufs.len()).min(BATCH);
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..count {
            let (len, dst) = queued[i];
            iovs[i] = libc::iovec {
                // sendmmsg only reads through it.
                iov_base: bufs[i].as_ptr().cast_mut().cast(),
                iov_len: len,
            };
            hdrs[i].msg_hdr.msg_namelen = to_sockaddr(dst, &mut names[i]);
            hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdrs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: as for recvmmsg; the kernel only reads the buffers.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                count as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    pub fn send_now(socket: &UdpSocket, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let len = to_sockaddr(dst, &mut name);
        // SAFETY: `buf` and `name` outlive the call, with the lengths given;
        // the kernel only reads them.
        let n = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&raw const name).cast(),
                len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn from_sockaddr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        match libc::c_int::from(name.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says sockaddr_in, the length covers it,
                // and sockaddr_storage is aligned for every sockaddr.
                let a = unsafe { &*(&raw const *name).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let a = unsafe { &*(&raw const *name).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    fn to_sockaddr(addr: SocketAddr, name: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in; every field is written below.
                let s = unsafe { &mut *(&raw mut *name).cast::<libc::sockaddr_in>() };
                s.sin_family = libc::AF_INET as libc::sa_family_t;
                s.sin_port = a.port().to_be();
                s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let s = unsafe { &mut *(&raw mut *name).cast::<libc::sockaddr_in6>() };
                s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                s.sin6_port = a.port().to_be();
                s.sin6_addr.s6_addr = a.ip().octets();
                s.sin6_flowinfo = a.flowinfo();
                s.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn addresses_round_trip() {
            for addr in ["127.0.0.1:53", "[fd00::5%3]:5353", "[::ffff:10.0.0.1]:1"] {
                let addr: SocketAddr = addr.parse().unwrap();
                // SAFETY: all-zero is a valid sockaddr_storage.
                let mut name: libc::sockaddr_storage = unsafe { zeroed() };
                let len = to_sockaddr(addr, &mut name);
                assert_eq!(from_sockaddr(&name, len), Some(addr));
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! One system call per datagram, through std.

    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    use super::{BATCH, RECV_BUFFER, SEND_BUFFER};

    pub fn recv(
        socket: &UdpSocket,
        bufs: &mut [[u8; RECV_BUFFER]; BATCH],
        got: &mut Vec<(usize, Option<SocketAddr>)>,
    ) -> io::Result<()> {
        let (n, src) = socket.recv_from(&mut bufs[0])?;
        got.push((n, Some(src)));
        Ok(())
    }

    pub fn send(
        socket: &UdpSocket,
        bufs: &[[u8; SEND_BUFFER]],
        queued: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        let (len, dst) = queued[0];
        socket.send_to(&bufs[0][..len], dst)?;
        Ok(1)
    }

    /// Without MSG_DONTWAIT: a full buffer briefly blocks the task.
    pub fn send_now(socket: &UdpSocket, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
        socket.send_to(buf, dst).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn server() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        prepare(&s).unwrap();
        s
    }

    /// Several datagrams queued before one receive come out of it together,
    /// in order, each with its sender; their answers all arrive.
    #[test]
    fn batches_round_trip() {
        let server = server();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 3], to).unwrap();
        }
        let (mut inbox, mut outbox) = (Inbox::default(), Outbox::default());
        let mut seen = Vec::new();
        let t = Instant::now();
        while seen.len() < 5 && t.elapsed() < Duration::from_secs(2) {
            let n = inbox.recv(&server).unwrap();
            for i in 0..n {
                let (msg, src) = inbox.get(i);
                assert_eq!(src, Some(client.local_addr().unwrap()));
                seen.push(msg.to_vec());
                let out = outbox.next();
                out[..2].copy_from_slice(&[msg[0], 0xAA]);
                outbox.push(2, src.unwrap());
            }
            outbox.flush(&server);
        }
        assert_eq!(seen, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
        let mut buf = [0u8; 16];
        for i in 0..5u8 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i, 0xAA]);
        }
        send_now(&server, b"x", client.local_addr().unwrap()).unwrap();
        assert_eq!(client.recv(&mut buf).unwrap(), 1);
    }

    /// A datagram longer than the buffer reads as empty (so it is dropped),
    /// not as its first 4 KiB; the next one reads whole. (Linux only: std's
    /// `recv_from` elsewhere cannot tell that it cut a datagram.)
    #[cfg(target_os = "linux")]
    #[test]
    fn an_oversized_datagram_reads_as_empty() {
        let server = server();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        client.send_to(&[7u8; RECV_BUFFER + 1], to).unwrap();
        client.send_to(&[8u8; 12], to).unwrap();
        let mut inbox = Inbox::default();
        let mut lens = Vec::new();
        let t = Instant::now();
        while lens.len() < 2 && t.elapsed() < Duration::from_secs(2) {
            let n = inbox.recv(&server).unwrap();
            lens.extend((0..n).map(|i| inbox.get(i).0.len()));
        }
        assert_eq!(lens, vec![0, 12]);
    }

    /// A length past the buffer, or past the last buffer, is refused, not
    /// sent (reading memory beyond the buffer) or a panic; the rest go.
    #[test]
    fn push_refuses_what_the_buffers_do_not_hold() {
        let server = server();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let dst = client.local_addr().unwrap();
        let mut outbox = Outbox::default();
        assert!(!outbox.push(SEND_BUFFER + 1, dst));
        assert!(!outbox.push(usize::MAX, dst));
        outbox.next()[..3].copy_from_slice(b"one");
        assert!(outbox.push(3, dst));
        for _ in 1..BATCH {
            assert!(outbox.push(SEND_BUFFER, dst));
        }
        assert!(outbox.next().is_empty(), "no buffer left");
        assert!(!outbox.push(1, dst));
        outbox.flush(&server);
        let mut buf = vec![0u8; 65536];
        let lens: Vec<usize> = (0..BATCH).map(|_| client.recv(&mut buf).unwrap()).collect();
        assert_eq!(lens[0], 3);
        assert!(lens[1..].iter().all(|&n| n == SEND_BUFFER));
        assert!(client.recv(&mut buf).is_err(), "nothing more");
    }

    /// A receive with nothing queued sleeps until a datagram comes, or
    /// returns empty-handed after [`WAKE_EVERY`], so its loop can stop.
    #[test]
    fn receive_waits_for_a_datagram_or_the_wake_up() {
        let server = server();
        let mut inbox = Inbox::default();
        let t = Instant::now();
        assert_eq!(inbox.recv(&server).unwrap(), 0, "nothing to take yet");
        let slept = t.elapsed();
        assert!(
            slept >= WAKE_EVERY - Duration::from_millis(10) && slept < WAKE_EVERY * 3,
            "{slept:?}"
        );
        let to = server.local_addr().unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(b"late", to).unwrap();
        });
        assert_eq!(inbox.recv(&server).unwrap(), 1);
        assert_eq!(inbox.get(0).0, b"late");
        late.join().unwrap();
    }
}
