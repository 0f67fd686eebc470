//! The value series kept ready to send, compressed only. Compressing thousands of series on
//! every scrape would cost more than encoding them, so a poll renders them straight into a raw
//! deflate stream, in pieces (the text itself, 27 MiB at 10,000 shops and 20,000 devices with
//! their day figures, is never held whole: the stream is a ninth of it). A gzip scrape is
//! assembled from parts: a header, the health series compressed now as non-final deflate
//! blocks, the cached stream, and a trailer whose CRC-32 combines both texts. A plain scrape
//! (Prometheus asks for gzip; a person with `curl` may not) gets the text inflated from the
//! cached stream a piece at a time as it is sent.

use std::io::Write;

use axum::body::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};

use crate::model::Snapshot;

/// How much text is rendered before it is handed to the compressor, and how much a plain
/// scrape inflates at a time.
pub(super) const PIECE: usize = 256 * 1024;

/// The value series of the last published snapshot: their raw deflate stream (ending in a
/// final block), and the CRC-32 and length of the text, ready to be wrapped into gzip or
/// inflated.
pub(super) struct Rendered {
    deflate: Bytes,
    crc: Crc,
    len: usize,
}

impl Default for Rendered {
    fn default() -> Self {
        // An empty text still needs a final deflate block (a final, empty fixed block).
        Rendered {
            deflate: Bytes::from_static(&[3, 0]),
            crc: Crc::new(),
            len: 0,
        }
    }
}

impl Rendered {
    /// Renders the value series of the accounts' snapshots (see
    /// [`super::encode::render_accounts`]) into the compressor, a piece at a time.
    pub(super) fn new(accounts: &[(Option<&str>, &Snapshot)]) -> std::io::Result<Self> {
        // Fast compression: the text is large and highly repetitive.
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        let (mut crc, mut len, mut failed) = (Crc::new(), 0, None);
        super::encode::render_chunks(accounts, PIECE, |piece| {
            if failed.is_none() {
                crc.update(piece.as_bytes());
                len += piece.len();
                failed = encoder.write_all(piece.as_bytes()).err();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let mut deflate = encoder.finish()?;
        // Held until the next poll: give back what the growth left over.
        deflate.shrink_to_fit();
        Ok(Rendered {
            deflate: Bytes::from(deflate),
            crc,
            len,
        })
    }

    /// The length of the text.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The text, inflated from the cached stream a piece at a time as the pieces are taken.
    pub(super) fn plain(&self) -> Inflate {
        Inflate {
            input: self.deflate.clone(),
            decompress: Decompress::new(false),
            left: self.len,
        }
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

/// The cached text inflated piece by piece (at most [`PIECE`] bytes each): what a plain scrape
/// holds besides the shared compressed stream.
pub(super) struct Inflate {
    input: Bytes,
    decompress: Decompress,
    /// Text still to come.
    left: usize,
}

impl Iterator for Inflate {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(PIECE.min(self.left));
        while out.len() < out.capacity() {
            let read = usize::try_from(self.decompress.total_in()).unwrap_or(usize::MAX);
            let input = self.input.get(read..).unwrap_or_default();
            let before = out.len();
            let status = self.decompress.decompress_vec(input, &mut out, FlushDecompress::None);
            match status {
                Ok(Status::Ok | Status::BufError) if out.len() > before => {}
                Ok(Status::StreamEnd) => break,
                // No progress, or a corrupt stream (ours, so a bug): end the text here; the
                // client sees it cut short of its length.
                Ok(_) => {
                    tracing::error!("the cached metrics stream ended early");
                    self.left = 0;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not inflate the cached metrics");
                    self.left = 0;
                    break;
                }
            }
        }
        self.left = self.left.saturating_sub(out.len());
        (!out.is_empty()).then(|| Bytes::from(out))
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
