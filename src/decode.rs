//! Incremental `Content-Encoding` decoding, owned by ssegate so that every decoded byte keeps the arrival
//! instant of the read that carried it. HTTP clients that decompress for you hide exactly that.

use std::io::Write;

/// A content coding the probe can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// Parse a `Content-Encoding` value. `none` (documented by Fly.io) and `identity` mean no coding.
    /// Stacked codings (`gzip, br`) are not supported and return `None`, as does any unknown name.
    pub fn parse(value: Option<&str>) -> Option<Coding> {
        let Some(v) = value else {
            return Some(Coding::Identity);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "identity" | "none" => Some(Coding::Identity),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("failed to decode the {coding} body")]
    Corrupt {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("decoded body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Where decoders write: refuses to grow past its budget, so one small input cannot expand without
/// bound inside a decoder call (zstd and brotli can turn a few bytes into many megabytes).
#[derive(Debug, Default)]
struct Sink {
    buf: Vec<u8>,
    /// Bytes this sink may still accept in total.
    room: u64,
    overflowed: bool,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 && !data.is_empty() {
            self.overflowed = true;
            return Err(std::io::Error::other("decoded body exceeds its limit"));
        }
        // Up to the budget: the bytes before the limit are delivered, the rest refused.
        let n = data
            .len()
            .min(usize::try_from(self.room).unwrap_or(usize::MAX));
        self.room -= n as u64;
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Sink>>),
    /// `deflate` whose wrapping (zlib or raw) is not known until two bytes arrived.
    DeflatePending(Vec<u8>),
    Zlib(Box<flate2::write::ZlibDecoder<Sink>>),
    RawDeflate(Box<flate2::write::DeflateDecoder<Sink>>),
    Brotli(Box<brotli::DecompressorWriter<Sink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sink>>),
    /// The decoder could not be created (allocation failure in zstd).
    Broken,
}

/// Decodes one body as its reads arrive.
pub struct Decoder {
    coding: Coding,
    inner: Inner,
    produced: u64,
    limit: u64,
    /// The limit was reached: the output was cut there and nothing more is decoded.
    over: bool,
}

/// Input is fed in slices of this size so that a compression bomb cannot expand one read without bound.
const SLICE: usize = 4096;

fn feed<W: Write>(w: &mut W, input: &[u8]) -> std::io::Result<()> {
    w.write_all(input)?;
    w.flush()
}

impl Decoder {
    /// A decoder for `coding` that refuses to produce more than `limit` bytes in total.
    pub fn new(coding: Coding, limit: u64) -> Decoder {
        let sink = || Sink {
            room: limit,
            ..Sink::default()
        };
        let inner = match coding {
            Coding::Identity => Inner::Identity,
            Coding::Gzip => Inner::Gzip(Box::new(flate2::write::GzDecoder::new(sink()))),
            Coding::Deflate => Inner::DeflatePending(Vec::new()),
            Coding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(sink(), 4096)))
            }
            Coding::Zstd => match zstd::stream::write::Decoder::new(sink()) {
                Ok(d) => Inner::Zstd(Box::new(d)),
                Err(_) => Inner::Broken,
            },
        };
        Decoder {
            coding,
            inner,
            produced: 0,
            limit,
            over: false,
        }
    }

    pub fn coding(&self) -> Coding {
        self.coding
    }

    fn overflowed(&mut self) -> bool {
        match &mut self.inner {
            Inner::Gzip(d) => d.get_mut().overflowed,
            Inner::Zlib(d) => d.get_mut().overflowed,
            Inner::RawDeflate(d) => d.get_mut().overflowed,
            Inner::Brotli(d) => d.get_mut().overflowed,
            Inner::Zstd(d) => d.get_mut().overflowed,
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self.coding {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// Decode the next read; returns the bytes it made available. When they reach the limit, the bytes
    /// up to it are returned and [`Decoder::over_limit`] says so; every later call is
    /// [`DecodeError::TooLarge`].
    pub fn push(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if self.over {
            return Err(DecodeError::TooLarge { limit: self.limit });
        }
        let mut out = Vec::new();
        for slice in input.chunks(SLICE) {
            let got = match self.push_slice(slice) {
                Ok(got) => got,
                Err(DecodeError::TooLarge { .. }) => {
                    self.over = true;
                    self.take_partial()
                }
                Err(e) => return Err(e),
            };
            let room = self.limit.saturating_sub(self.produced);
            let keep = got.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            self.produced += keep as u64;
            if keep < got.len() {
                self.over = true;
            }
            if out.is_empty() {
                // One slice can decode to megabytes (a bomb): move it rather than copy it.
                let mut got = got;
                got.truncate(keep);
                out = got;
            } else {
                out.extend_from_slice(&got[..keep]);
            }
            if self.over {
                break;
            }
        }
        Ok(out)
    }

    /// The decoded body reached the limit: the output was cut there.
    pub fn over_limit(&self) -> bool {
        self.over
    }

    /// What a decoder wrote before it overflowed its sink.
    fn take_partial(&mut self) -> Vec<u8> {
        let sink = match &mut self.inner {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::RawDeflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
            _ => return Vec::new(),
        };
        std::mem::take(&mut sink.buf)
    }

    fn push_slice(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let coding = self.name();
        let corrupt = |source| DecodeError::Corrupt { coding, source };
        if let Inner::DeflatePending(head) = &mut self.inner {
            head.extend_from_slice(input);
            if head.len() < 2 {
                return Ok(Vec::new());
            }
            let head = std::mem::take(head);
            let zlib =
                (head[0] & 0x0f) == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            let sink = Sink {
                room: self.limit.saturating_sub(self.produced),
                ..Sink::default()
            };
            self.inner = if zlib {
                Inner::Zlib(Box::new(flate2::write::ZlibDecoder::new(sink)))
            } else {
                Inner::RawDeflate(Box::new(flate2::write::DeflateDecoder::new(sink)))
            };
            return self.push_slice(&head);
        }
        fn take(sink: &mut Sink) -> Vec<u8> {
            std::mem::take(&mut sink.buf)
        }
        let limit = self.limit;
        let result = match &mut self.inner {
            Inner::Identity => Ok(input.to_vec()),
            Inner::Gzip(d) => feed(d.as_mut(), input).map(|()| take(d.get_mut())),
            Inner::Zlib(d) => feed(d.as_mut(), input).map(|()| take(d.get_mut())),
            Inner::RawDeflate(d) => feed(d.as_mut(), input).map(|()| take(d.get_mut())),
            Inner::Brotli(d) => feed(d.as_mut(), input).map(|()| take(d.get_mut())),
            Inner::Zstd(d) => feed(d.as_mut(), input).map(|()| take(d.get_mut())),
            Inner::DeflatePending(_) => Ok(Vec::new()),
            Inner::Broken => Err(std::io::Error::other("decoder unavailable")),
        };
        if result.is_err() && self.overflowed() {
            return Err(DecodeError::TooLarge { limit });
        }
        result.map_err(corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_pieces(coding: Coding, wire: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::new(coding, 1 << 20);
        let mut out = Vec::new();
        for p in wire.chunks(piece) {
            out.extend(d.push(p).unwrap());
        }
        out
    }

    #[test]
    fn parses_codings() {
        assert_eq!(Coding::parse(None), Some(Coding::Identity));
        assert_eq!(Coding::parse(Some("none")), Some(Coding::Identity));
        assert_eq!(Coding::parse(Some(" GZIP ")), Some(Coding::Gzip));
        assert_eq!(Coding::parse(Some("br")), Some(Coding::Brotli));
        assert_eq!(Coding::parse(Some("gzip, br")), None);
        assert_eq!(Coding::parse(Some("compress")), None);
    }

    #[test]
    fn every_coding_round_trips_in_small_reads() {
        let text: Vec<u8> = (0..200)
            .flat_map(|i| format!("id: {i}\ndata: {i}\n\n").into_bytes())
            .collect();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&text).unwrap();
        let raw = r.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).unwrap();
        }
        let zst = zstd::encode_all(text.as_slice(), 3).unwrap();
        for (coding, wire) in [
            (Coding::Gzip, gzip(&text)),
            (Coding::Deflate, zlib),
            (Coding::Deflate, raw),
            (Coding::Brotli, br),
            (Coding::Zstd, zst),
            (Coding::Identity, text.clone()),
        ] {
            for piece in [1, 7, 4096] {
                assert_eq!(
                    decode_in_pieces(coding, &wire, piece),
                    text,
                    "{coding:?} in {piece}-byte reads"
                );
            }
        }
    }

    #[test]
    fn a_sync_flushed_gzip_prefix_decodes_before_the_stream_ends() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"data: 1\n\n").unwrap();
        e.flush().unwrap();
        let prefix = e.get_ref().clone();
        let mut d = Decoder::new(Coding::Gzip, 1 << 20);
        assert_eq!(d.push(&prefix).unwrap(), b"data: 1\n\n");
    }

    #[test]
    fn corrupt_input_and_bombs_are_errors() {
        let mut d = Decoder::new(Coding::Gzip, 1 << 20);
        assert!(matches!(
            d.push(b"this is not gzip at all"),
            Err(DecodeError::Corrupt { .. })
        ));
        // A bomb decodes up to the limit, exactly: those bytes are delivered, then nothing more.
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        let mut d = Decoder::new(Coding::Gzip, 64 * 1024);
        assert_eq!(d.push(&bomb).unwrap(), vec![b'a'; 64 * 1024]);
        assert!(d.over_limit());
        assert!(matches!(d.push(&bomb), Err(DecodeError::TooLarge { .. })));
        // a few bytes of zstd that expand to 64 MiB stop at the limit inside one call, and what came
        // before the limit is not lost with the rest
        let zbomb = zstd::encode_all(vec![b'z'; 64 << 20].as_slice(), 19).unwrap();
        assert!(zbomb.len() < 8192, "{}", zbomb.len());
        let mut d = Decoder::new(Coding::Zstd, 1 << 20);
        assert_eq!(d.push(&zbomb).unwrap(), vec![b'z'; 1 << 20]);
        assert!(d.over_limit());
        let mut d = Decoder::new(Coding::Identity, 10);
        assert_eq!(d.push(b"0123456789abc").unwrap(), b"0123456789");
        assert!(d.over_limit());
    }
}
