//! The value series kept ready to send, plain and compressed. Compressing thousands of series
//! on every scrape would cost more than encoding them, so a poll compresses them once into a
//! raw deflate stream, and a gzip scrape is assembled from parts: a header, the health series
//! compressed now as non-final deflate blocks, the cached stream, and a trailer whose CRC-32
//! combines both texts.

use std::io::Write;

use axum::body::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compress, Compression, Crc, FlushCompress};

/// The value series of the last published snapshot: the text, its raw deflate stream (ending
/// in a final block) and the CRC-32 of the text, ready to be wrapped into gzip.
pub(super) struct Rendered {
    plain: Bytes,
    deflate: Bytes,
    crc: Crc,
}

impl Default for Rendered {
    fn default() -> Self {
        // An empty text still needs a final deflate block (a final, empty fixed block).
        Rendered {
            plain: Bytes::new(),
            deflate: Bytes::from_static(&[3, 0]),
            crc: Crc::new(),
        }
    }
}

impl Rendered {
    pub(super) fn new(text: String) -> std::io::Result<Self> {
        // Fast compression: the text is large and highly repetitive.
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(text.len() / 8 + 64), Compression::fast());
        encoder.write_all(text.as_bytes())?;
        let mut deflate = encoder.finish()?;
        // Held until the next poll: give back what the estimate or the growth left over.
        deflate.shrink_to_fit();
        let mut crc = Crc::new();
        crc.update(text.as_bytes());
        Ok(Rendered {
            plain: Bytes::from(text),
            deflate: Bytes::from(deflate),
            crc,
        })
    }

    /// The text (shared bytes, never copied).
    pub(super) fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// `head` followed by the cached text as one gzip member, in parts to send one after the
    /// other: header and `head` as non-final deflate blocks, the cached deflate stream (shared
    /// bytes), and the trailer.
    pub(super) fn gzip_after(&self, head: &[u8]) -> Vec<Bytes> {
        let mut start = GZIP_HEADER.to_vec();
        deflate_sync(head, &mut start);
        let mut crc = Crc::new();
        crc.update(head);
        crc.combine(&self.crc);
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&crc.sum().to_le_bytes());
        trailer.extend_from_slice(&crc.amount().to_le_bytes());
        vec![Bytes::from(start), self.deflate.clone(), Bytes::from(trailer)]
    }
}

/// A gzip member header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Appends `data` to `out` as raw deflate blocks ending in a sync flush: byte-aligned and not
/// final, so that another deflate stream may follow.
fn deflate_sync(data: &[u8], out: &mut Vec<u8>) {
    let mut compress = Compress::new(Compression::fast(), false);
    let mut input = data;
    loop {
        out.reserve(input.len() + 1024);
        let before_in = compress.total_in();
        if let Err(e) = compress.compress_vec(input, out, FlushCompress::Sync) {
            tracing::error!(error = %e, "could not compress the health metrics");
            return;
        }
        let consumed = usize::try_from(compress.total_in() - before_in).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        // Done once all input is in and the flush did not fill `out` (so it is complete).
        if input.is_empty() && out.len() < out.capacity() {
            return;
        }
    }
}
