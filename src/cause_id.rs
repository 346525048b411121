//! The stable ids of the causes `doctor` and `check` name, from one table.
//!
//! A leaf module: diagnosis builds causes with these ids, and a hop definition names the cause it is
//! known to produce, without either importing the other.

/// The one table: variant, report id, meaning.
macro_rules! cause_ids {
    ($($variant:ident $id:literal $doc:literal;)*) => {
        /// The stable id of a cause: CI users and scripts match on it, so never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum CauseId {
            $(#[doc = $doc] #[serde(rename = $id)] $variant,)*
        }

        impl CauseId {
            /// Every cause there is, in the table's order.
            pub const ALL: &[CauseId] = &[$(CauseId::$variant),*];

            /// The id as it appears in reports (`proxy-buffering`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CauseId::$variant => $id,)*
                }
            }
        }
    };
}

cause_ids! {
    OriginBuffering "origin-buffering" "The origin buffers its own output: a server ssegate started (`check`), or a `--compare` stream that was held too (`doctor`).";
    OriginAbort "origin-abort" "A server ssegate started ended its response abruptly (`check` only).";
    WholeBodyBuffering "whole-body-buffering" "A layer buffers the whole body and answers with a Content-Length.";
    GzipMembers "gzip-members" "The body is a series of gzip members; browsers decode only the first.";
    CompressionBuffering "compression-buffering" "A compression layer holds events until its buffer fills.";
    ProxyBuffering "proxy-buffering" "A reverse proxy buffers the response.";
    CachedStream "cached-stream" "A cache stored the stream and replays it.";
    IdleTimeout "idle-timeout" "An idle timeout closed the stream after a silence.";
    DurationCap "duration-cap" "A total-duration cap ended the stream.";
    FirstByteDelay "first-byte-delay" "The headers arrive only with the first event.";
    MissingTerminator "missing-terminator" "Events are not ended by a blank line.";
    AddedLatency "added-latency" "Every event is a little late but not batched.";
}

impl std::fmt::Display for CauseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
