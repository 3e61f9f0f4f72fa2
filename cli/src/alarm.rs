//! `sutra alarm list|disarm`: the cluster's replicated alarms (etcd's `alarm list` and
//! `alarm disarm`). While NOSPACE is active the cluster takes no write that stores
//! anything new; disarm it once the node that raised it has room again (it raises it
//! again otherwise).

use serde::Serialize;
use sutra_client::Connector;
use sutra_proto::cluster::{AlarmsResponse, DisarmAlarmRequest, ListAlarmsRequest};

use crate::view::{Output, View, print};

/// Flags of `sutra alarm`.
#[derive(Debug, clap::Args)]
pub struct AlarmArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `alarm` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// The active alarms.
    List,
    /// Disarm alarms (admin certificate): all of them, or those of one node or kind.
    Disarm {
        /// Only the alarms this node raised.
        #[arg(long)]
        node: Option<u64>,
        /// Only alarms of this kind (NOSPACE).
        #[arg(long)]
        kind: Option<String>,
    },
}

/// One alarm.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AlarmRow {
    /// The node that raised it.
    pub node_id: u64,
    /// Its kind (`NOSPACE`).
    pub kind: String,
}

/// The alarms active after the call.
#[derive(Debug, Serialize)]
pub struct AlarmsView {
    /// Every active alarm.
    pub alarms: Vec<AlarmRow>,
}

impl From<AlarmsResponse> for AlarmsView {
    fn from(r: AlarmsResponse) -> Self {
        Self {
            alarms: r
                .alarms
                .into_iter()
                .map(|a| AlarmRow {
                    node_id: a.node_id,
                    kind: a.kind,
                })
                .collect(),
        }
    }
}

impl View for AlarmsView {
    fn table(&self) -> String {
        if self.alarms.is_empty() {
            return "no alarms".to_string();
        }
        let lines: Vec<String> = self
            .alarms
            .iter()
            .map(|a| format!("{} on node {}", a.kind, a.node_id))
            .collect();
        lines.join("\n")
    }
}

/// Runs the action on the first endpoint that answers (a disarm goes through the
/// leader from any node, like a write).
pub async fn run(
    args: AlarmArgs,
    endpoints: &[String],
    connector: &Connector,
    output: Output,
) -> anyhow::Result<()> {
    let mut last = None;
    for ep in endpoints {
        let mut c = match connector.cluster(ep).await {
            Ok(c) => c,
            Err(e) => {
                last = Some(anyhow::anyhow!("{ep}: {e}"));
                continue;
            }
        };
        let answer = match &args.action {
            Action::List => c.list_alarms(ListAlarmsRequest {}).await,
            Action::Disarm { node, kind } => {
                c.disarm_alarm(DisarmAlarmRequest {
                    node_id: node.unwrap_or(0),
                    kind: kind.clone().unwrap_or_default(),
                })
                .await
            }
        };
        match answer {
            Ok(r) => return print(output, &AlarmsView::from(r.into_inner())),
            Err(s) if s.code() == tonic::Code::Unavailable => {
                last = Some(anyhow::anyhow!("{ep}: {}", s.message()));
            }
            Err(s) => anyhow::bail!("{}: {}", s.code(), s.message()),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no endpoint answered")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_proto::cluster::Alarm;

    #[test]
    fn alarms_print_as_lines_and_json() {
        let view = AlarmsView::from(AlarmsResponse {
            alarms: vec![Alarm {
                node_id: 2,
                kind: "NOSPACE".into(),
            }],
        });
        assert_eq!(view.table(), "NOSPACE on node 2");
        let j: serde_json::Value = serde_json::to_value(&view).unwrap();
        assert_eq!(j["alarms"][0]["node_id"], 2);
        assert_eq!(j["alarms"][0]["kind"], "NOSPACE");
        assert_eq!(AlarmsView { alarms: vec![] }.table(), "no alarms");
    }
}
