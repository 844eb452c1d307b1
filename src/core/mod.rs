//! The pure ranking core: no `worker` import, no I/O, no clock. Time comes in
//! as arguments; everything here builds and tests natively and on wasm32.

pub mod catalog;
pub mod chores;
pub mod hooks;
pub mod period;
pub mod ranking;
pub mod retention;
pub mod shards;
pub mod slices;
pub mod template;
pub mod zone;

use serde::{Deserialize, Serialize};

/// Which end of the score range is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Higher scores rank first (likes, sales).
    #[default]
    Desc,
    /// Lower scores rank first (lap times).
    Asc,
}

/// How an event's value combines with a member's current score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// score += value
    #[default]
    Incr,
    /// keep the better of old and new under the board's order
    Best,
    /// the value with the latest event `ts` wins, whatever the arrival order
    Last,
}

/// How equal scores are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ties {
    /// Competition ranking: 1, 2, 2, 4.
    #[default]
    Shared,
    /// Distinct ranks; whoever reached the score first ranks higher.
    First,
}

/// API 1.1 `tiebreak`: how a second number, the subscore, orders members
/// with equal scores (before reach time and id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tiebreak {
    /// No subscore: equal scores are ordered by reach time, then id.
    #[default]
    None,
    /// The lower subscore ranks first (e.g. time taken).
    Asc,
    /// The higher subscore ranks first.
    Desc,
}

impl Tiebreak {
    pub fn is_none(&self) -> bool {
        *self == Tiebreak::None
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tiebreak::None => "none",
            Tiebreak::Asc => "asc",
            Tiebreak::Desc => "desc",
        }
    }
}

/// A time window a board keeps; each period of a window is its own ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    All,
    Day,
    Week,
    Month,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::All, Window::Day, Window::Week, Window::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::All => "all",
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }
}
