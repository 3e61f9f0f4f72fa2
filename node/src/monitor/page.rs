//! The status page at `/`: the cluster as this node sees it, server-rendered HTML that
//! refreshes itself every 5 s and needs no JavaScript.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::node::Node;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page.
pub(super) fn render(node: &Node) -> String {
    let m = node.metrics();
    let health = crate::health::report(node);
    let stats = node.engine.stats();
    let progress = crate::service::cluster::follower_progress(node.id, &m);
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>Sutra node {id}</title>\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:2px 8px;text-align:left}}\
         .leader{{font-weight:bold}}</style></head><body>\
         <h1>Sutra cluster, as node {id} sees it</h1>\
         <p>Node {id}: <b>{role}</b>, {status}{reason}. Term {term}, leader {leader}, \
         commit index {commit}, applied index {applied}. Version {version} ({commit_hash}).</p>",
        id = node.id,
        role = esc(&health.role),
        status = esc(&health.status),
        reason = if health.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(&health.reason))
        },
        term = m.current_term,
        leader = m
            .current_leader
            .map_or("unknown".to_string(), |l| format!("node {l}")),
        commit = health.commit_index,
        applied = health.applied_index,
        version = crate::build_info::VERSION,
        commit_hash = crate::build_info::COMMIT,
    );
    h.push_str(
        "<h2>Nodes</h2><table id=\"nodes\"><tr><th>node</th><th>role</th><th>membership</th>\
         <th>client address</th><th>matched index</th><th>lag (entries)</th>\
         <th>last ack (ms ago)</th></tr>",
    );
    for (id, info) in membership.nodes() {
        let is_leader = m.current_leader == Some(*id);
        let p = progress.iter().find(|p| p.node_id == *id);
        let cell = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td>node {id}</td><td>{role}</td><td>{member}</td>\
             <td>{addr}</td><td>{matched}</td><td>{lag}</td><td>{ack}</td></tr>",
            class = if is_leader { "leader" } else { "member" },
            role = if is_leader { "LEADER" } else { "follower" },
            member = if voters.contains(id) {
                "voter"
            } else {
                "learner"
            },
            addr = esc(&info.api_addr),
            matched = cell(p.map(|p| p.matched_index)),
            lag = cell(p.map(|p| p.lag_entries)),
            ack = cell(p.map(|p| p.last_ack_ms_ago).filter(|a| *a != u64::MAX)),
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>Storage on node {id}</h2><table><tr><th>concepts</th><td>{}</td></tr>\
         <tr><th>edges</th><td>{}</td></tr><tr><th>data bytes</th><td>{}</td></tr>\
         <tr><th>garbage bytes</th><td>{}</td></tr><tr><th>data file bytes</th><td>{}</td></tr>\
         <tr><th>quota bytes</th><td>{}</td></tr><tr><th>sessions</th><td>{}</td></tr></table>",
        stats.concepts,
        stats.edges,
        stats.data_bytes,
        stats.garbage_bytes,
        stats.file_bytes,
        health.quota_bytes,
        stats.sessions,
        id = node.id,
    );
    h.push_str("<h2>Alarms</h2>");
    if health.alarms.is_empty() {
        h.push_str("<p>none</p>");
    } else {
        h.push_str("<ul>");
        for a in &health.alarms {
            let _ = write!(h, "<li>{}</li>", esc(a));
        }
        h.push_str("</ul>");
    }
    h.push_str(
        "<h2>Recent leader changes</h2><table><tr><th>at (Unix s)</th><th>term</th>\
         <th>leader</th></tr>",
    );
    for c in node.instruments.leaders.recent().iter().rev() {
        let _ = write!(
            h,
            "<tr><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            c.at_unix_s,
            c.term,
            c.leader.map_or("none".to_string(), |l| format!("node {l}")),
        );
    }
    h.push_str("</table></body></html>\n");
    h
}
