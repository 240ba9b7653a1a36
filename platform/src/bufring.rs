//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): receive memory per event loop,
//! not per connection. The kernel picks a buffer for each multishot receive; the loop hands
//! it back once it is done with the bytes (checked by the loadgen, echoed by the server),
//! and publishes the new tail once per loop iteration. Untouched buffers cost no RSS.

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Anonymous, page-aligned memory (the ring must be page-aligned), unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped exactly once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// The ring of buffer descriptors and the buffers themselves.
///
/// Must outlive the `IoUring` it is registered with (declare the ring field first in the
/// owning struct so it drops first).
pub struct BufRing {
    ring: Mapping,
    bufs: Mapping,
    entries: u16,
    buf_size: u32,
    /// Our copy of the tail: buffers handed back but maybe not yet published.
    tail: u16,
    pub bgid: u16,
}

impl BufRing {
    /// `entries` must be a power of two (at most 32768).
    pub fn new(entries: u16, buf_size: u32, bgid: u16) -> io::Result<Self> {
        assert!(
            entries.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring = Mapping::new(usize::from(entries) * std::mem::size_of::<BufRingEntry>())?;
        let bufs = Mapping::new(usize::from(entries) * buf_size as usize)?;
        let mut me = BufRing {
            ring,
            bufs,
            entries,
            buf_size,
            tail: 0,
            bgid,
        };
        for bid in 0..entries {
            me.give_back(bid);
        }
        me.publish();
        Ok(me)
    }

    /// Registers the ring with `submitter` under `self.bgid`.
    pub fn register(&self, submitter: &Submitter<'_>) -> io::Result<()> {
        // SAFETY: the ring memory is page-aligned, holds `entries` descriptors and lives as
        // long as `self`, which the owner keeps alive until the io_uring is dropped.
        unsafe {
            submitter.register_buf_ring_with_flags(self.ring.ptr as u64, self.entries, self.bgid, 0)
        }
    }

    /// Number of buffers in the ring.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Bytes `offset..len` of buffer `bid`, as a raw pointer and length for a request
    /// that sends them (the caller keeps the buffer out of the ring until it completes).
    pub fn raw(&self, bid: u16, offset: u32, len: u32) -> (*const u8, u32) {
        let len = len.min(self.buf_size);
        let offset = offset.min(len);
        let start = usize::from(bid % self.entries) * self.buf_size as usize + offset as usize;
        // SAFETY: start <= the end of buffer `bid`, inside the buffer mapping.
        (unsafe { self.bufs.ptr.add(start) }, len - offset)
    }

    /// The first `len` bytes of buffer `bid` as the kernel filled them.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let len = len.min(self.buf_size as usize);
        let offset = usize::from(bid % self.entries) * self.buf_size as usize;
        // SAFETY: offset + len lies inside the buffer mapping; the kernel wrote this buffer
        // before posting the completion that named it, and does not touch it again until
        // it is handed back with `give_back`, which needs `&mut self`.
        unsafe { std::slice::from_raw_parts(self.bufs.ptr.add(offset), len) }
    }

    /// Hands buffer `bid` back to the kernel (visible after the next `publish`).
    pub fn give_back(&mut self, bid: u16) {
        let mask = self.entries - 1;
        let index = usize::from(self.tail & mask);
        // SAFETY: index < entries, so the descriptor lies inside the ring mapping; the
        // kernel only reads descriptors between its head and the published tail, and this
        // slot is past the published tail.
        unsafe {
            let entry = &mut *self.ring.ptr.cast::<BufRingEntry>().add(index);
            entry.set_addr(self.bufs.ptr.add(usize::from(bid) * self.buf_size as usize) as u64);
            entry.set_len(self.buf_size);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every buffer handed back so far visible to the kernel (one release store).
    pub fn publish(&self) {
        // SAFETY: the tail field overlays the first descriptor's reserved field, inside the
        // mapping, 2-byte aligned; the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.ptr.cast::<BufRingEntry>()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}
