//! Received messages waiting for the application.
//!
//! A linear buffer over the caller's storage: complete messages, each behind a 4-byte length,
//! then the message being reassembled. Delivered messages are released from the front; the
//! contents slide back to the start only when a fragment would not fit at the end, so each
//! message is contiguous and handed out without a copy.

/// Bytes stored in front of each message.
const LEN_PREFIX: usize = 4;

#[derive(Debug)]
pub(crate) struct RecvBuffer<B> {
    buf: B,
    /// Start of the oldest complete message's prefix.
    read: usize,
    /// End of the complete messages; the partial message's prefix starts here.
    complete_end: usize,
    /// End of the data.
    write: usize,
    /// Whether a message is being reassembled (its prefix is reserved at `complete_end`).
    partial: bool,
    complete: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RecvBuffer<B> {
    pub(crate) fn new(buf: B) -> Self {
        Self { buf, read: 0, complete_end: 0, write: 0, partial: false, complete: 0 }
    }

    pub(crate) fn reset(&mut self) {
        self.read = 0;
        self.complete_end = 0;
        self.write = 0;
        self.partial = false;
        self.complete = 0;
    }

    fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// The largest message that fits in an empty buffer.
    pub(crate) fn max_message(&self) -> usize {
        self.capacity().saturating_sub(LEN_PREFIX)
    }

    /// Bytes free, counting the space that sliding back would reclaim.
    pub(crate) fn free(&self) -> usize {
        self.capacity() - (self.write - self.read)
    }

    /// Bytes of the message being reassembled.
    pub(crate) fn partial_len(&self) -> usize {
        if self.partial { self.write - self.complete_end - LEN_PREFIX } else { 0 }
    }

    /// Complete messages not yet released.
    pub(crate) fn complete(&self) -> usize {
        self.complete
    }

    /// Appends a fragment; returns whether it completed a message, or `Err` (nothing stored)
    /// if it does not fit.
    pub(crate) fn push(&mut self, payload: &[u8], more: bool) -> Result<bool, ()> {
        let need = payload.len() + if self.partial { 0 } else { LEN_PREFIX };
        if need > self.free() {
            return Err(());
        }
        if self.write + need > self.capacity() {
            self.slide_back();
        }
        if !self.partial {
            self.partial = true;
            self.write += LEN_PREFIX;
        }
        let write = self.write;
        self.buf.as_mut()[write..write + payload.len()].copy_from_slice(payload);
        self.write += payload.len();
        if more {
            return Ok(false);
        }
        let len = self.partial_len() as u32;
        let at = self.complete_end;
        self.buf.as_mut()[at..at + LEN_PREFIX].copy_from_slice(&len.to_le_bytes());
        self.complete_end = self.write;
        self.partial = false;
        self.complete += 1;
        Ok(true)
    }

    fn slide_back(&mut self) {
        let read = self.read;
        self.buf.as_mut().copy_within(read..self.write, 0);
        self.complete_end -= read;
        self.write -= read;
        self.read = 0;
    }

    fn front_len(&self) -> usize {
        let b = &self.buf.as_ref()[self.read..self.read + LEN_PREFIX];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The oldest complete message.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        (self.complete > 0).then(|| {
            let start = self.read + LEN_PREFIX;
            &self.buf.as_ref()[start..start + self.front_len()]
        })
    }

    /// Releases the oldest complete message.
    pub(crate) fn pop(&mut self) {
        if self.complete == 0 {
            return;
        }
        self.read += LEN_PREFIX + self.front_len();
        self.complete -= 1;
        if self.read == self.write {
            self.read = 0;
            self.complete_end = 0;
            self.write = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_into_contiguous_messages() {
        let mut r = RecvBuffer::new([0u8; 32]);
        assert_eq!(r.push(b"hel", true), Ok(false));
        assert_eq!(r.partial_len(), 3);
        assert_eq!(r.push(b"lo", false), Ok(true));
        assert_eq!(r.push(b"", false), Ok(true));
        assert_eq!(r.complete(), 2);
        assert_eq!(r.front(), Some(&b"hello"[..]));
        r.pop();
        assert_eq!(r.front(), Some(&b""[..]));
        r.pop();
        assert_eq!(r.front(), None);
        assert_eq!(r.free(), 32);
    }

    #[test]
    fn full_buffer_refuses_without_storing_and_slides_back_when_needed() {
        let mut r = RecvBuffer::new([0u8; 32]);
        assert_eq!(r.push(&[1; 10], false), Ok(true)); // 14 used
        assert_eq!(r.push(&[2; 10], false), Ok(true)); // 28 used
        assert_eq!(r.push(&[3; 1], false), Err(()));
        assert_eq!(r.free(), 4);
        r.pop(); // frees 14 at the front, none at the end
        assert_eq!(r.free(), 18);
        assert_eq!(r.push(&[4; 14], false), Ok(true)); // needs the slide
        assert_eq!(r.front(), Some(&[2u8; 10][..]));
        r.pop();
        assert_eq!(r.front(), Some(&[4u8; 14][..]));
    }
}
