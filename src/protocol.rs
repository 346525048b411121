//! The protocol a stream speaks over HTTP: a browser's `EventSource`, or one of the LLM token streams
//! (`--protocol`, `protocol:`). What each means for a stream is judged in `verdict::tokens`; this is the
//! name, low enough for a probe's request to carry it.

use serde::{Deserialize, Serialize};

/// How a stream's events are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Recognise it from the response.
    #[default]
    Auto,
    /// A browser's `EventSource`: events, no tokens.
    Eventsource,
    /// OpenAI Chat Completions: `data: {"choices":[{"delta":…}]}`, ended by `data: [DONE]`.
    OpenaiChat,
    /// OpenAI Responses: `event: response.output_text.delta`, ended by `response.completed`.
    OpenaiResponses,
    /// Anthropic Messages: `content_block_delta`, ended by `message_stop`.
    Anthropic,
    /// The Vercel AI SDK's UI message stream: `data: {"type":"text-delta",…}`, ended by `data: [DONE]`.
    AiSdk,
    /// One JSON object per line (Ollama): `message.content` or `response` lines, ended by `"done": true`.
    Ndjson,
    /// An MCP server over Streamable HTTP: a session opened with `initialize`, then a `tools/call` whose
    /// progress notifications and result are the stream's events.
    Mcp,
}

/// Every protocol name `--protocol` and `protocol:` take.
pub const NAMES: &[&str] = &[
    "auto",
    "eventsource",
    "openai-chat",
    "openai-responses",
    "anthropic",
    "ai-sdk",
    "ndjson",
    "mcp",
];

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Eventsource => "eventsource",
            Protocol::OpenaiChat => "openai-chat",
            Protocol::OpenaiResponses => "openai-responses",
            Protocol::Anthropic => "anthropic",
            Protocol::AiSdk => "ai-sdk",
            Protocol::Ndjson => "ndjson",
            Protocol::Mcp => "mcp",
        }
    }

    /// A protocol by name; an error names the valid ones.
    pub fn parse(name: &str) -> Result<Protocol, String> {
        Ok(match name {
            "auto" => Protocol::Auto,
            "eventsource" => Protocol::Eventsource,
            "openai-chat" => Protocol::OpenaiChat,
            "openai-responses" => Protocol::OpenaiResponses,
            "anthropic" => Protocol::Anthropic,
            "ai-sdk" => Protocol::AiSdk,
            "ndjson" => Protocol::Ndjson,
            "mcp" => Protocol::Mcp,
            _ => {
                return Err(format!(
                    "unknown protocol `{name}`, {}",
                    crate::text::name_help(name, NAMES)
                ));
            }
        })
    }

    /// Whether its events carry tokens (and it ends with a terminal event).
    pub fn has_tokens(self) -> bool {
        matches!(
            self,
            Protocol::OpenaiChat
                | Protocol::OpenaiResponses
                | Protocol::Anthropic
                | Protocol::AiSdk
                | Protocol::Ndjson
        )
    }

    /// Whether a body asked to be read as `self` with this content type is NDJSON (one JSON object per
    /// line) rather than SSE: asked for, or `auto` and a content type that says so
    /// (`application/x-ndjson`, `application/jsonl`, …).
    pub fn reads_lines(self, content_type: &str) -> bool {
        match self {
            Protocol::Ndjson => true,
            Protocol::Auto => ndjson_content_type(content_type),
            _ => false,
        }
    }

    /// What its terminal event is called, for reports.
    pub fn terminal_name(self) -> &'static str {
        match self {
            Protocol::OpenaiChat | Protocol::AiSdk => "[DONE]",
            Protocol::OpenaiResponses => "response.completed",
            Protocol::Anthropic => "message_stop",
            Protocol::Ndjson => "\"done\": true",
            _ => "",
        }
    }
}

/// The MCP tool a `--protocol mcp` check calls (`--mcp-tool`, `--mcp-args`; `target.mcp`; a case's
/// `request.mcp`). Without a tool, the first one `tools/list` gives is called with no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpTool {
    pub tool: Option<String>,
    /// The call's `arguments`, a JSON object as text (YAML may give it as a mapping).
    #[serde(default, deserialize_with = "json_text")]
    pub args: Option<String>,
}

fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(v) => Ok(Some(v.to_string())),
    }
}

impl McpTool {
    /// The first problem with it, if any: arguments that are not a JSON object.
    pub fn validate(&self) -> Result<(), String> {
        match &self.args {
            Some(a) => match serde_json::from_str::<serde_json::Value>(a) {
                Ok(serde_json::Value::Object(_)) => Ok(()),
                Ok(_) => Err("the MCP tool's arguments must be a JSON object".into()),
                Err(e) => Err(format!("the MCP tool's arguments are not JSON: {e}")),
            },
            None => Ok(()),
        }
    }
}

/// Whether a content type names NDJSON / JSON Lines.
pub fn ndjson_content_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq")
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
