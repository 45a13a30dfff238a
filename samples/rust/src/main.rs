//! The shortest complete use of zcopy, in Rust: register a buffer, send it
//! zero-copy over TCP, wait for its completion record, unregister.
//!
//!     zcopy-send ADDRESS:PORT [BYTES]
//!
//! The buffer holds byte i = (i * 7 + (i >> 8)) & 0xff, as the C sample's.

use std::{net::TcpStream, os::fd::AsRawFd};

use anyhow::{ensure, Context, Result};
use zcopy::{abi, device::Device};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let to = args
        .next()
        .context("usage: zcopy-send ADDRESS:PORT [BYTES]")?;
    let len: usize = args.next().map_or(Ok(1 << 20), |s| s.parse())?;
    let buf: Vec<u8> = (0..len).map(|i| (i * 7 + (i >> 8)) as u8).collect();

    let zc = Device::open()?;
    let sock = TcpStream::connect(&to).with_context(|| format!("connecting to {to}"))?;

    // Pin the buffer once; every send from it is by reference.
    let region = zc.register(&buf, abi::ZC_REGISTER_READONLY, 0)?;
    let sent = zc.send(sock.as_raw_fd(), region.id, 0, len as u64, 42)?;
    // The buffer may be reused once its record arrives.
    let done = zc.completions(1)?[0];
    println!(
        "sent {sent} bytes; completion: tag {}, {} bytes, {}",
        done.tag,
        done.bytes,
        if done.flags & abi::ZC_COMPLETION_COPIED != 0 {
            "copied by the stack"
        } else {
            "sent by reference"
        }
    );
    zc.unregister(region.id)?;
    ensure!(done.tag == 42 && done.bytes == sent && sent == len as u64);
    Ok(())
}
