//! An MCP session through a chain, judged: the steps ssegate's client took to open it (`initialize`,
//! `notifications/initialized`, `tools/list`) and the call's own answer, with the findings when the
//! session could not be had or was lost on the way.
//!
//! The client is [`crate::mcp`]; this holds what it measured, so that reports and the verdict can read
//! it. The session id itself is never kept here: only whether the server gave one and its length.

use std::time::Duration;

use serde::Serialize;

use crate::verdict::Finding;
use crate::verdict::evidence::evidence;
use crate::verdict::rules::FindingId;

/// One request of the session's opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpStep {
    /// `initialize`, `notifications/initialized`, `tools/list`, `tools/call`.
    pub name: &'static str,
    /// Its HTTP status (0: no response).
    pub status: u16,
    #[serde(rename = "took_ms", serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
    /// Whether it sent the session id it was given.
    pub with_session: bool,
    /// `json`, `event-stream`, `empty`, or what went wrong.
    pub answer: String,
    pub ok: bool,
}

/// The session, as ssegate's client opened it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct McpSession {
    /// The revision the server answered `initialize` with.
    pub revision: Option<String>,
    /// The revision the client offered.
    pub offered: String,
    /// Length of the `Mcp-Session-Id` the server issued (None: it issued none, a stateless server).
    pub session_id_len: Option<usize>,
    /// The tool called.
    pub tool: Option<String>,
    pub steps: Vec<McpStep>,
    /// Every step answered as it should, so the call was made.
    pub established: bool,
}

impl McpSession {
    /// `session established (2025-11-25), tool slow_task` or what stopped it.
    pub fn summary(&self) -> String {
        if self.established {
            format!(
                "session {} ({}), tool `{}`",
                if self.session_id_len.is_some() {
                    "established"
                } else {
                    "stateless"
                },
                self.revision.as_deref().unwrap_or("?"),
                self.tool.as_deref().unwrap_or("?")
            )
        } else {
            match self.steps.iter().find(|s| !s.ok) {
                Some(s) if s.name == "tools/list" && (200..300).contains(&s.status) => {
                    format!("session opened, but nothing to call: {}", s.answer)
                }
                Some(s) => format!(
                    "no session: `{}` answered {} ({})",
                    s.name, s.status, s.answer
                ),
                None => "no session".into(),
            }
        }
    }

    /// Each step in a line: `initialize 200 json`.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}{}",
                    s.name,
                    s.status,
                    s.answer,
                    if s.with_session {
                        " (with session)"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    }
}

/// The findings of a session: `session-lost` when a request carrying the id the server issued got 404
/// (the session is unknown where it landed: another replica, or a server that restarted), else
/// `mcp-session-failed` when the session could not be opened at all. `call_status` is the `tools/call`
/// answer's status (0: none).
pub fn judge(s: &McpSession, call_status: u16) -> Vec<Finding> {
    let lost = s
        .steps
        .iter()
        .find(|st| st.with_session && st.status == 404)
        .map(|st| st.name)
        .or(
            (s.established && s.session_id_len.is_some() && call_status == 404)
                .then_some("tools/call"),
        );
    if let Some(step) = lost {
        return vec![Finding::new(
            FindingId::SessionLost,
            evidence!(
                "`{}` carried the session id the server issued and got 404: the session is unknown where the request landed",
                step
            ),
        )];
    }
    if !s.established {
        let why = s.steps.iter().find(|st| !st.ok).map_or_else(
            || "no step answered".to_string(),
            |st| format!("`{}` answered {} ({})", st.name, st.status, st.answer),
        );
        return vec![Finding::new(
            FindingId::McpSessionFailed,
            evidence!("no MCP session through this path: {}", why),
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &'static str, status: u16, with_session: bool, ok: bool) -> McpStep {
        McpStep {
            name,
            status,
            took: Duration::from_millis(3),
            with_session,
            answer: "json".into(),
            ok,
        }
    }

    #[test]
    fn a_404_with_the_session_is_a_lost_session_other_failures_no_session() {
        let mut s = McpSession {
            session_id_len: Some(36),
            steps: vec![
                step("initialize", 200, false, true),
                step("notifications/initialized", 404, true, false),
            ],
            ..McpSession::default()
        };
        let f = judge(&s, 0);
        assert_eq!(f[0].id(), FindingId::SessionLost);
        s.steps[1] = step("notifications/initialized", 400, false, false);
        let f = judge(&s, 0);
        assert_eq!(f[0].id(), FindingId::McpSessionFailed);
        assert!(
            f[0].evidence.to_string().contains("answered 400"),
            "{}",
            f[0].evidence
        );
        s.steps[1] = step("notifications/initialized", 202, true, true);
        s.established = true;
        assert!(judge(&s, 200).is_empty());
        assert_eq!(judge(&s, 404)[0].id(), FindingId::SessionLost);
    }
}
