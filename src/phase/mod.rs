//! Phases: measurements made through a running chain beside or after its probe, one file each.
//!
//! A phase owns everything about its measurement: its plan (the case key, with serde), how it measures
//! through the running chain ([`Through`]) and its witness, its typed result (which *is* its JSON block
//! and its snapshot block), its `expect` check, and its gate policy (who can fix what it found, and
//! whether that fails or warns). The [`phases!`] table below names each phase once; the plan and result
//! enums, the case keys, the expectations and every loop over phases come from it.
//!
//! Adding a phase is one new file with an `impl Phase` and one line in the table (see
//! `ARCHITECTURE.md`, "Add a phase").

use std::future::Future;
use std::time::Duration;

use crate::intermediary::HopSpec;
use crate::through::{Main, ScenarioError, Through};
use crate::verdict::{Finding, FindingId, Severity};

/// One kind of measurement through a running chain.
pub trait Phase: 'static {
    /// Its key in JSON documents (`second`, `load`, `lifecycle`, `browser`).
    const KEY: &'static str;
    /// Its findings join the stream's verdict as soon as it is measured. When false they stay with the
    /// phase: the gate judges them by [`Phase::gate`], and a case's expectation reads them with the
    /// stream's.
    const JOINS_VERDICT: bool = true;
    /// It runs after every other phase (its own streams would disturb their measurements).
    const LAST: bool = false;
    /// It measures what a chain keeps between clients (a cache) or loads the chain: a case that plans it
    /// gets a chain of its own, never one shared with other cases (see `runner::Pool`).
    const OWN_CHAIN: bool = false;
    /// A case that plans it but expects nothing of it.
    const EXPECT_MISSING: &'static str;
    /// A case that expects something of it without planning it.
    const EXPECT_ALONE: &'static str;
    /// The values its expectation takes, for the help of [`Phase::EXPECT_MISSING`].
    const EXPECT_VALUES: &'static str;

    /// What a case (or `check`) asks of it.
    type Plan: Copy + std::fmt::Debug + Send + Sync;
    /// What it measured, judged.
    type Result: std::fmt::Debug + serde::Serialize + Send + Sync;
    /// What a case expects of it: a tuple of its `expect` keys' values, in the table's order.
    type Expect: Copy + std::fmt::Debug;

    /// Whether the plan asks for anything (`lifecycle: false` does not).
    fn enabled(_plan: &Self::Plan) -> bool {
        true
    }
    /// A plan out of range, said in the case's words.
    fn validate(_plan: &Self::Plan) -> Result<(), String> {
        Ok(())
    }
    /// Before the chain starts (its programs inherit what this sets up).
    fn prepare(_plan: &Self::Plan, _hops: &[HopSpec], _fixture: bool) {}
    /// A client of the phase's that opens this long after the main probe starts, while it listens; its
    /// recording reaches [`Phase::measure`] as [`Main::beside`].
    fn beside(_plan: &Self::Plan) -> Option<Duration> {
        None
    }
    /// Measure through the running chain, once the main probe has ended.
    fn measure(
        plan: Self::Plan,
        through: &Through<'_>,
        main: &Main,
    ) -> impl Future<Output = Result<Self::Result, ScenarioError>> + Send;
    /// What it found.
    fn findings(result: &Self::Result) -> Vec<Finding>;
    /// Add to `failures` what did not hold of `expect` (`result` is None when the phase did not run).
    fn expectation(expect: Self::Expect, result: Option<&Self::Result>, failures: &mut Vec<String>);
    /// Its block of the normalized report (the snapshot): what does not vary run to run.
    fn snapshot(result: &Self::Result, s: &mut String);
    /// Its lines under a chain in `check`'s human report.
    fn human(_result: &Self::Result, _s: &mut String) {}
    /// What the gate makes of it on a chain; `direct` is the same phase on the direct stream, if any.
    fn gate(
        _result: &Self::Result,
        _policy: &GatePolicy<'_>,
        _direct: Option<&Self::Result>,
    ) -> Vec<(Level, String)> {
        Vec::new()
    }
}

/// How much a gate reason weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Reported; fails only when `expect` names the chain.
    Warn,
    Fail,
}

/// The parts of `ssegate.yaml`'s `expect` a phase's gate reads.
pub struct GatePolicy<'a> {
    /// `expect.allow` names it: it never fails the gate.
    pub allowed: &'a dyn Fn(FindingId) -> bool,
    /// `expect.deny` names it: it always fails the gate.
    pub denied: &'a dyn Fn(FindingId) -> bool,
    /// The least severity that fails the gate.
    pub fail_on: Severity,
    /// `expect.delivery` names the chain.
    pub explicit: bool,
}

/// A case's key and its expectation's keys, where they are, for the checks that pair them.
pub struct Paired<'a> {
    /// The plan's key (when given and enabled) and whether its value is valid.
    pub given: Option<(&'a serde_saphyr::Location, Result<(), String>)>,
    /// Where the first of its `expect` keys is.
    pub expected: Option<&'a serde_saphyr::Location>,
    pub missing: &'static str,
    pub alone: &'static str,
    pub values: &'static str,
}

/// The table of phases: `Variant = module::Type, plan CASE_KEY, expect { EXPECT_KEY: TYPE, … };`, in the
/// order their keys appear in a case. It declares each phase's module (`src/phase/<module>.rs`) and
/// generates [`PhasePlan`], [`PhaseResult`], [`PhaseExpect`], the loops of [`Phases`] and the macros
/// `case_plans!`/`case_expect!` that put the keys into a case's structs.
macro_rules! phases {
    ($d:tt $(
        $(#[doc = $doc:literal])*
        $V:ident = $m:ident :: $T:ident,
        plan $pkey:ident,
        expect { $($ekey:ident : $ety:ty),+ $(,)? };
    )+) => {
        $( pub mod $m; )+

        /// A phase as planned.
        #[derive(Debug, Clone, Copy)]
        pub enum PhasePlan {
            $( $V(<$m::$T as Phase>::Plan), )+
        }

        /// A phase as measured.
        #[derive(Debug)]
        pub enum PhaseResult {
            $( $V(<$m::$T as Phase>::Result), )+
        }

        /// What a case expects of every phase.
        #[derive(Debug, Clone, Copy, Default, serde::Serialize)]
        pub struct PhaseExpect {
            $($(
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $ekey: Option<$ety>,
            )+)+
        }

        impl PhasePlan {
            /// The case needs a chain of its own ([`Phase::OWN_CHAIN`]).
            pub fn own_chain(&self) -> bool {
                match self { $( PhasePlan::$V(_) => <$m::$T as Phase>::OWN_CHAIN, )+ }
            }

            fn last(&self) -> bool {
                match self { $( PhasePlan::$V(_) => <$m::$T as Phase>::LAST, )+ }
            }

            /// Before the chain starts.
            pub fn prepare(&self, hops: &[HopSpec], fixture: bool) {
                match self { $( PhasePlan::$V(p) => <$m::$T as Phase>::prepare(p, hops, fixture), )+ }
            }

            /// When its client opens beside the main probe, if it has one.
            pub fn beside(&self) -> Option<Duration> {
                match self { $( PhasePlan::$V(p) => <$m::$T as Phase>::beside(p), )+ }
            }

            /// Measure it through the running chain.
            pub async fn measure(
                self,
                through: &Through<'_>,
                main: &Main,
            ) -> Result<PhaseResult, ScenarioError> {
                Ok(match self {
                    $( PhasePlan::$V(p) => PhaseResult::$V(<$m::$T as Phase>::measure(p, through, main).await?), )+
                })
            }
        }

        impl PhaseResult {
            /// Its key in JSON documents.
            pub fn key(&self) -> &'static str {
                match self { $( PhaseResult::$V(_) => <$m::$T as Phase>::KEY, )+ }
            }
            /// What it found.
            pub fn findings(&self) -> Vec<Finding> {
                match self { $( PhaseResult::$V(r) => <$m::$T as Phase>::findings(r), )+ }
            }
            /// Whether its findings join the stream's verdict as measured.
            pub fn joins_verdict(&self) -> bool {
                match self { $( PhaseResult::$V(_) => <$m::$T as Phase>::JOINS_VERDICT, )+ }
            }
            /// Its snapshot block.
            pub fn snapshot(&self, s: &mut String) {
                match self { $( PhaseResult::$V(r) => <$m::$T as Phase>::snapshot(r, s), )+ }
            }
            /// Its lines in `check`'s human report.
            pub fn human(&self, s: &mut String) {
                match self { $( PhaseResult::$V(r) => <$m::$T as Phase>::human(r, s), )+ }
            }
            /// What the gate makes of it; `direct` holds the direct stream's phases.
            pub fn gate(&self, policy: &GatePolicy<'_>, direct: &Phases) -> Vec<(Level, String)> {
                match self { $( PhaseResult::$V(r) => <$m::$T as Phase>::gate(r, policy, direct.get::<$m::$T>()), )+ }
            }
            fn serialize_in<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self { $( PhaseResult::$V(r) => map.serialize_entry(<$m::$T as Phase>::KEY, r), )+ }
            }
        }

        $(
            impl Member for $m::$T {
                fn of(r: &PhaseResult) -> Option<&Self::Result> {
                    #[allow(unreachable_patterns)]
                    match r { PhaseResult::$V(x) => Some(x), _ => None }
                }
                fn of_mut(r: &mut PhaseResult) -> Option<&mut Self::Result> {
                    #[allow(unreachable_patterns)]
                    match r { PhaseResult::$V(x) => Some(x), _ => None }
                }
            }
        )+

        impl Phases {
            /// Add to `failures` what did not hold of what a case expects of its phases.
            pub fn expectation(&self, e: &PhaseExpect, failures: &mut Vec<String>) {
                $( <$m::$T as Phase>::expectation(($( e.$ekey, )+), self.get::<$m::$T>(), failures); )+
            }
        }

        /// Puts the phases' plan keys into a case's struct, between its `[…]` groups of fields, and
        /// gives it `phase_plans()` and `paired_phases()`.
        macro_rules! case_plans {
            (
                $d(#[$d meta:meta])*
                $d vis:vis struct $d name:ident {
                    [ $d($d before:tt)* ]
                    [ $d($d after:tt)* ]
                }
            ) => {
                $d(#[$d meta])*
                $d vis struct $d name {
                    $d($d before)*
                    $(
                        $(#[doc = $doc])*
                        pub $pkey: Option<serde_saphyr::Spanned<<$crate::phase::$m::$T as $crate::phase::Phase>::Plan>>,
                    )+
                    $d($d after)*
                }

                impl $d name {
                    /// The phases the case plans, in the table's order.
                    pub fn phase_plans(&self) -> Vec<$crate::phase::PhasePlan> {
                        use $crate::phase::Phase as _;
                        let mut plans = Vec::new();
                        $(
                            if let Some(p) = &self.$pkey
                                && <$crate::phase::$m::$T>::enabled(&p.value)
                            {
                                plans.push($crate::phase::PhasePlan::$V(p.value));
                            }
                        )+
                        plans
                    }

                    /// Each phase's plan key with its expectation's keys.
                    pub fn paired_phases(&self) -> Vec<$crate::phase::Paired<'_>> {
                        use $crate::phase::Phase as _;
                        vec![$(
                            $crate::phase::Paired {
                                given: self.$pkey.as_ref()
                                    .filter(|p| <$crate::phase::$m::$T>::enabled(&p.value))
                                    .map(|p| (&p.referenced, <$crate::phase::$m::$T>::validate(&p.value))),
                                expected: None$( .or(self.expect.$ekey.as_ref().map(|k| &k.referenced)) )+,
                                missing: <$crate::phase::$m::$T>::EXPECT_MISSING,
                                alone: <$crate::phase::$m::$T>::EXPECT_ALONE,
                                values: <$crate::phase::$m::$T>::EXPECT_VALUES,
                            },
                        )+]
                    }
                }
            };
        }
        pub(crate) use case_plans;

        /// Puts the phases' `expect` keys into a case's `expect` struct, after its fields, and gives it
        /// `phases()`.
        macro_rules! case_expect {
            (
                $d(#[$d meta:meta])*
                $d vis:vis struct $d name:ident {
                    $d($d body:tt)*
                }
            ) => {
                $d(#[$d meta])*
                $d vis struct $d name {
                    $d($d body)*
                    $($(
                        pub $ekey: Option<serde_saphyr::Spanned<$ety>>,
                    )+)+
                }

                impl $d name {
                    /// What the case expects of its phases.
                    pub fn phases(&self) -> $crate::phase::PhaseExpect {
                        $crate::phase::PhaseExpect {
                            $($( $ekey: self.$ekey.as_ref().map(|k| k.value), )+)+
                        }
                    }
                }
            };
        }
        pub(crate) use case_expect;
    };
}

phases! { $
    /// A second client on the same URL (does a cache share the stream?).
    Sharing = sharing::SharingPhase,
        plan second_client,
        expect { sharing: crate::verdict::sharing::Sharing };
    /// Many concurrent streams through the same chain after the probe (does the chain hold them?).
    Load = load::LoadPhase,
        plan load,
        expect { capacity: crate::verdict::capacity::Capacity };
    /// After the probe, the lifecycle phases through the same chain: a reconnect with `Last-Event-ID`
    /// and a client that leaves after its first event (`expect.reconnect` / `expect.disconnect`).
    Lifecycle = lifecycle::LifecyclePhase,
        plan lifecycle,
        expect {
            reconnect: crate::verdict::lifecycle::ReconnectOutcome,
            disconnect: crate::verdict::lifecycle::DisconnectOutcome,
        };
    /// After the probe, a real browser (headless Chromium) opens the same URL through the same chain:
    /// `true`, or `{limit: true}` to also open seven `EventSource`s (the HTTP/1.1 connection limit).
    /// `expect.browser` says what the browser's `EventSource` gets.
    Browser = browser::BrowserPhase,
        plan browser,
        expect { browser: crate::verdict::Delivery };
    /// Last, the user's client suite through the same chain: `exec: 'CMD … {url} …'` (or `{command,
    /// timeout_ms}`); `expect.suite` says whether it passes.
    Exec = exec::ExecPhase,
        plan exec,
        expect { suite: crate::phase::exec::SuiteOutcome };
}

/// A phase of the table, to find its result among others.
pub trait Member: Phase {
    fn of(r: &PhaseResult) -> Option<&Self::Result>;
    fn of_mut(r: &mut PhaseResult) -> Option<&mut Self::Result>;
}

/// What a scenario's phases measured, in the order they ran; serialized as one key per phase.
#[derive(Debug, Default)]
pub struct Phases(pub Vec<PhaseResult>);

impl Phases {
    /// The result of phase `P`, when it ran.
    pub fn get<P: Member>(&self) -> Option<&P::Result> {
        self.0.iter().find_map(P::of)
    }

    /// The result of phase `P`, to add to it.
    pub fn get_mut<P: Member>(&mut self) -> Option<&mut P::Result> {
        self.0.iter_mut().find_map(P::of_mut)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PhaseResult> {
        self.0.iter()
    }

    pub fn push(&mut self, r: PhaseResult) {
        self.0.push(r);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every phase's findings.
    pub fn findings(&self) -> Vec<Finding> {
        self.0.iter().flat_map(PhaseResult::findings).collect()
    }

    /// The findings of the phases whose findings do not join the verdict as measured.
    pub fn own_findings(&self) -> Vec<Finding> {
        self.0
            .iter()
            .filter(|r| !r.joins_verdict())
            .flat_map(PhaseResult::findings)
            .collect()
    }
}

impl serde::Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for r in &self.0 {
            r.serialize_in(&mut map)?;
        }
        map.end()
    }
}

/// Run `plans` through the running chain after its main probe: in the table's order, the `LAST` ones
/// after the others.
pub async fn measure_all(
    plans: &[PhasePlan],
    through: &Through<'_>,
    main: &Main,
) -> Result<Phases, ScenarioError> {
    let mut out = Phases::default();
    for last in [false, true] {
        for p in plans.iter().filter(|p| p.last() == last) {
            out.push(p.measure(through, main).await?);
        }
    }
    Ok(out)
}

/// A phase's expectation of one outcome, by name: a failure when it ran and differs, or did not run.
pub fn expect_one(
    failures: &mut Vec<String>,
    name: &str,
    want: Option<String>,
    got: Option<(String, &str)>,
) {
    let Some(want) = want else { return };
    match got {
        Some((got, why)) if got != want => failures.push(format!(
            "expected {name} `{want}`, measured `{got}` ({why})"
        )),
        Some(_) => {}
        None => failures.push(format!("expected a {name} phase, but none ran")),
    }
}
