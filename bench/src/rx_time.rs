//! Reads that also return when the kernel received the data (`SO_TIMESTAMPNS`).
//!
//! Why: a receipt time taken when a viewer *task* gets to run includes the load tool's own
//! scheduling — 500 tasks on the 2 cores the gateway also needs. The kernel's receive
//! timestamp says when the bytes reached the viewer's socket, which is what a viewer on
//! its own machine would see, so the fan-out spread measured with it is the server's.
//!
//! [`discard`] consumes bytes without copying them out of the kernel (`MSG_TRUNC`, which
//! Linux honours on TCP), for a viewer that only needs the start of each message.
//!
//! Invariant: a read returns the timestamp of the newest data it returned (Linux reports the
//! receive time of the last segment a `recvmsg` consumed); `None` if the kernel gave none
//! (it switches timestamping on asynchronously, so the first packets after the first
//! `enable` in a process may have none — the load tool's warm-up covers that).

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Asks the kernel to timestamp what `stream` receives.
pub fn enable(stream: &TcpStream) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for the duration of the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads at most `max` bytes into `buf`'s spare capacity, waiting until some arrive.
/// Returns the count (0 at end of stream) and the kernel's receive time, µs since the
/// Unix epoch.
pub async fn read(
    stream: &TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> io::Result<(usize, Option<u64>)> {
    buf.reserve(max);
    let n_at = wait_and(stream, || {
        let spare = buf.spare_capacity_mut();
        let len = spare.len().min(max);
        // SAFETY: the spare capacity is `len` writable bytes.
        unsafe { recv(stream, spare.as_mut_ptr().cast(), len, 0) }
    })
    .await?;
    // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n_at.0) };
    Ok(n_at)
}

/// Consumes at most `max` received bytes without copying them, waiting until some arrive.
/// Returns the count (0 at end of stream) and the kernel's receive time, as [`read`].
pub async fn discard(stream: &TcpStream, max: usize) -> io::Result<(usize, Option<u64>)> {
    // SAFETY: with MSG_TRUNC a TCP receive copies nothing, so no buffer is needed (the
    // same idiom HAProxy uses to drain sockets).
    wait_and(stream, || unsafe {
        recv(stream, std::ptr::null_mut(), max, libc::MSG_TRUNC)
    })
    .await
}

async fn wait_and(
    stream: &TcpStream,
    mut recv: impl FnMut() -> io::Result<(usize, Option<u64>)>,
) -> io::Result<(usize, Option<u64>)> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, &mut recv) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// One `recvmsg` into `len` bytes at `base` with `flags`, with the receive timestamp.
///
/// # Safety
/// `base` must be valid for writes of `len` bytes, unless `flags` has `MSG_TRUNC`.
unsafe fn recv(
    stream: &TcpStream,
    base: *mut libc::c_void,
    len: usize,
    flags: libc::c_int,
) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: base,
        iov_len: len,
    };
    // u64s keep the control buffer aligned for `cmsghdr`.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero `msghdr` is a valid empty header; the fields set below point at
    // `iov` and `control`, which outlive the `recvmsg` call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: `msg` describes one buffer of `iov_len` bytes the caller vouched for and a
    // writable control buffer of `msg_controllen` bytes.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let mut at = None;
    // SAFETY: `msg` was filled in by `recvmsg`; CMSG_FIRSTHDR/NXTHDR stay within
    // `msg_controllen` and return null at the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points at a header inside `control`.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one `timespec`; it may be unaligned.
            let time: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            at = Some(time.tv_sec as u64 * 1_000_000 + time.tv_nsec as u64 / 1_000);
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok((n, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn reads_carry_the_kernel_receive_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (client, mut server) = (client.unwrap(), accepted.unwrap().0);
        enable(&client).unwrap();
        // The kernel turns timestamping on asynchronously the first time a process asks
        // (a static key flipped from a workqueue): data arriving at once may carry none.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;

        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        server.write_all(b"hello").await.unwrap();
        // Arrived now, read later: the timestamp is the arrival, not the read.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut buf = BytesMut::new();
        let (n, at) = read(&client, &mut buf, 1024).await.unwrap();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert_eq!((n, &buf[..]), (5, &b"hello"[..]));
        let at = at.expect("the kernel timestamps received data");
        assert!(
            before <= at && at + 40_000 < after,
            "{before} <= {at}, well before {after}"
        );

        // Discarding consumes exactly what it is asked to, with a timestamp too.
        server.write_all(b"skip these, keep this").await.unwrap();
        let mut skipped = 0;
        while skipped < 12 {
            let (n, at) = discard(&client, 12 - skipped).await.unwrap();
            assert!(n > 0 && at.is_some());
            skipped += n;
        }
        let mut buf = BytesMut::new();
        let (n, _) = read(&client, &mut buf, 1024).await.unwrap();
        assert_eq!(&buf[..n], b"keep this");
    }
}
