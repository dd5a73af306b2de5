"""HTML of the console's pages from their view models. Every value goes through `e` (HTML-escaped), so
text a customer wrote can never become markup or script."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from parley.console import charts
from parley.console.conversation import ConversationView, MessageView
from parley.console.views import DASH, ConversationRow, FloorView, PipelineView, TrafficView

NAV = (("floor", "/", "Floor"), ("traffic", "/traffic", "Traffic"), ("pipeline", "/pipeline", "Pipeline"))


def e(value: object) -> str:
    return escape(str(value), quote=True)


def plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def conversation_href(conversation_id: str) -> str:
    return "/conversations/" + quote(conversation_id, safe="")


def layout(title: str, page: str, main: str, query: str = "") -> str:
    links = "".join(
        f'<a href="{href}"{" class=current" if key == page else ""}>{label}</a>' for key, href, label in NAV
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · Parley console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head><body data-page="{e(page)}">
<header><span class="brand">Parley</span><nav>{links}</nav>
<form action="/search" method="get" class="search"><input name="q" value="{e(query)}"
 placeholder="conversation id or customer handle" aria-label="search"><button>Find</button></form>
<span id="live" class="live" title="live updates">offline</span></header>
<main id="main">{main}</main>
</body></html>"""


def table(headers: list[str], rows: list[str], css: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}" class="empty">none</td></tr>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def cell(field: str, value: object, extra: str = "") -> str:
    return f'<td data-field="{field}"{extra}>{e(value)}</td>'


def conversation_rows(rows: list[ConversationRow]) -> str:
    body = [
        f'<tr data-conversation="{e(r.conversation_id)}">'
        f'<td><a href="{e(conversation_href(r.conversation_id))}">{e(r.conversation_id)}</a></td>'
        f"<td>{e(r.customer)}</td><td>{e(r.channel)}</td><td>{e(r.state)}</td><td>{e(r.intent)}</td>"
        f"<td>{e(r.topic)}</td><td>{e(r.team)}</td><td>{r.messages}</td><td>{e(r.updated)}</td></tr>"
        for r in rows
    ]
    return table(
        ["conversation", "customer", "channel", "state", "intent", "topic", "team", "messages", "updated"],
        body,
        "conversations",
    )


def floor_page(view: FloorView) -> str:
    rows = []
    for q in view.queues:
        rows.append(
            f'<tr data-team="{e(q.team)}" class="{e(q.status)}">'
            f'<th scope="row"><a href="/queues/{e(quote(q.team, safe=""))}">{e(q.team)}</a></th>'
            + cell("depth", q.depth)
            + cell("longest_wait", q.longest_wait, f' data-seconds="{q.oldest_wait_seconds:.1f}"')
            + cell("sla_at_risk", q.sla_at_risk)
            + cell("sla_breached", q.sla_breached)
            + cell("service_level_today", q.service_level_today)
            + cell("average_speed_of_answer", q.average_speed_of_answer)
            + cell("abandonment", q.abandonment)
            + cell("agents_online", q.agents_online)
            + cell("agents_available", q.agents_available)
            + cell("agents_away", q.agents_away)
            + cell("occupancy", q.occupancy)
            + cell("agents_needed", DASH if q.agents_needed is None else q.agents_needed)
            + cell("staffing_advice", q.staffing_advice)
            + cell("arrivals_per_hour", q.arrivals_per_hour)
            + "</tr>"
        )
    headers = [
        "team", "waiting", "longest wait", "SLA at risk", "SLA breached", "service level today",
        "avg speed of answer", "abandoned", "online", "available", "away", "occupancy",
        "agents needed (Erlang C)", "advice", "arrivals/h",
    ]  # fmt: skip
    summary = (
        f'<p class="summary"><b data-total="waiting">{view.waiting}</b> waiting · '
        f'<b data-total="at_risk">{view.at_risk}</b> at risk · '
        f'<b data-total="breached">{view.breached}</b> breached</p>'
    )
    main = (
        "<h1>Floor</h1>"
        + summary
        + table(headers, rows, "queues")
        + '<p class="note">Staffing: agents needed to answer 80% within 60 s at the last hour\'s arrivals '
        "and the mean handling time (Erlang C). Service level, speed of answer and abandonment count the "
        "conversations opened today (UTC).</p>"
        + "<h2>Recent conversations</h2>"
        + conversation_rows(view.recent)
    )
    return layout("Floor", "floor", main)


def list_page(title: str, rows: list[ConversationRow], query: str = "", note: str = "") -> str:
    main = f"<h1>{e(title)}</h1>" + (f'<p class="note">{e(note)}</p>' if note else "")
    return layout(title, "search", main + conversation_rows(rows), query)


def traffic_page(view: TrafficView) -> str:
    volume = "".join(
        f"<section><h3>by {e(s.dimension)}</h3>"
        + charts.stacked_columns(s.bucket_labels, s.counts, f"messages by {s.dimension}")
        + "</section>"
        for s in view.volume
    )
    timing_rows = [
        f'<tr data-timing="{e(t.name)}"><th scope="row">{e(t.name)}</th><td>{t.count}</td>'
        f"<td>{e(t.mean)}</td>"
        f"<td>{e(t.p50)}</td><td>{e(t.p90)}</td><td>{e(t.p99)}</td></tr>"
        for t in view.timings
    ]
    medians = charts.horizontal_bars(
        [(t.name, t.p90_seconds, t.p90) for t in view.timings if t.count], "90th percentile of each time"
    )
    breakdowns = "".join(
        f"<section><h3>conversations by {e(dimension)}</h3>"
        + charts.horizontal_bars([(k, float(n), str(n)) for k, n in pairs], f"by {dimension}")
        + "</section>"
        for dimension, pairs in view.breakdowns.items()
    )
    bot_total = view.bot_answered + view.bot_abstained
    main = (
        "<h1>Traffic</h1>"
        f'<p class="summary"><b data-total="conversations">{view.conversations}</b> conversations · '
        f'bot answered <b data-total="bot_answered">{view.bot_answered}</b>, abstained '
        f'<b data-total="bot_abstained">{view.bot_abstained}</b>'
        f"{f' ({100 * view.bot_answered / bot_total:.0f}% answered)' if bot_total else ''} · "
        f'reopen rate <b data-total="reopen_rate">{e(view.reopen_rate)}</b> ({view.reopened}) · '
        f'public→private <b data-total="moved_to_private">{view.moved_to_private}</b> '
        f"({e(view.moved_rate)})</p>"
        f"<h2>Customer messages over time</h2>"
        f'<p class="note">The {view.sample} most recently updated conversations, '
        "by when each message was sent.</p>"
        f'<div class="grid">{volume}</div>'
        "<h2>Response, handling and resolution times</h2>"
        + table(["time", "conversations", "mean", "p50", "p90", "p99"], timing_rows, "timings")
        + "<h3>90th percentile of each</h3>"
        + medians
        + f'<h2>Mix</h2><div class="grid">{breakdowns}</div>'
    )
    return layout("Traffic", "traffic", main)


def message_block(m: MessageView) -> str:
    parts = [
        f'<article class="message {e(m.direction)} {e(m.visibility)}" data-message="{e(m.message_id)}">'
        f'<header><b>{e(m.author)}</b> <span class="tag">{e(m.role)}</span> '
        f'<span class="tag {e(m.visibility)}">{e(m.visibility)}</span> <time>{e(m.at)}</time> '
        f'<span class="id">{e(m.message_id)}</span></header>'
        f'<p class="text">{e(m.text)}</p>'
    ]
    if m.triage:
        t = m.triage
        scores = ", ".join(f"{e(name)} {p:.2f}" for name, p in t.scores)
        entities = ", ".join(f"{e(kind)}: <code>{e(text)}</code>" for kind, text in t.entities) or DASH
        features = ", ".join(f"{e(name)} {w:+.2f}" for name, w in t.features) or DASH
        parts.append(
            '<dl class="triage">'
            f'<dt>intent</dt><dd data-field="intent">{e(t.intent)} '
            f"<small>(model: {e(t.model_intent)})</small></dd>"
            f"<dt>scores</dt><dd>{scores or DASH}</dd><dt>topic</dt><dd>{e(t.topic)}</dd>"
            f"<dt>urgency</dt><dd>{e(', '.join(t.urgency_reasons) or DASH)}</dd>"
            f"<dt>entities</dt><dd>{entities}</dd><dt>reasons</dt><dd>{features}"
            f"{' · rules ' + e(', '.join(t.rules_fired)) if t.rules_fired else ''}"
            f" <small>{e(t.model_version)}</small></dd>"
            f"<dt>bot</dt><dd>{e(t.bot_answer)}</dd><dt>language</dt><dd>{e(t.language)}</dd></dl>"
        )
    if m.decision:
        d = m.decision
        parts.append(
            f'<p class="decision" data-field="decision"><b>{e(d.action)}</b> → team {e(d.team)}, '
            f"agent {e(d.agent)} · priority {e(d.priority)} · rule <code>{e(d.rule)}</code> · "
            f"SLA due {e(d.sla_due)}<br>{e(d.reason)}</p>"
        )
        if d.bot_reply:
            parts.append(f'<p class="bot-reply">bot reply: {e(d.bot_reply)}</p>')
    for dv in m.deliveries:
        ids = ", ".join(dv.platform_ids) or DASH
        parts.append(
            f'<p class="delivery" data-delivery="{e(dv.reply_id)}">delivery <code>{e(dv.reply_id)}</code>: '
            f"<b>{e(dv.status)}</b> after {dv.attempts} attempt(s) · posted as {e(ids)}"
            f"{' · ' + e(dv.error) if dv.error else ''}</p>"
        )
    parts.append("</article>")
    return "".join(parts)


def conversation_page(view: ConversationView) -> str:
    facts = "".join(
        f"<dt>{e(k)}</dt><dd>{e(v)}</dd>"
        for k, v in (
            ("channel", view.channel),
            ("state", view.state),
            ("intent", view.intent),
            ("topic", view.topic),
            ("opened", view.opened),
            ("updated", view.updated),
            ("moved to private", "yes" if view.moved_to_private else "no"),
            ("reopened", view.reopen_count),
            ("agents", ", ".join(view.agents) or DASH),
            *view.metrics,
        )
    )
    people = "".join(
        f"<li>{e(name)} <span class='tag'>{e(role)}</span></li>" for name, role in view.participants
    )
    profile = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in view.profile)
    past = "".join(
        f'<li><a href="{e(conversation_href(cid))}">{e(cid)}</a> {e(intent)}, {e(state)}</li>'
        for cid, intent, state in view.past_conversations
    )
    audit_rows = []
    for a in view.audit:
        parts_text = ", ".join(f"{e(k)} {v:+.1f}" for k, v in a.priority_parts) or DASH
        candidates = (
            table(
                ["agent", "presence", "load", "skill", "sticky", "eligible", "note"],
                ["<tr>" + "".join(f"<td>{e(c[k])}</td>" for k in c) + "</tr>" for c in a.candidates],
                "candidates",
            )
            if a.candidates
            else ""
        )
        audit_rows.append(
            f'<li class="audit" data-kind="{e(a.kind)}"><b>{e(a.kind)}</b> <time>{e(a.at)}</time> '
            f'<span class="id">{e(a.message_id)}</span> '
            f"{e(a.action)} → {e(a.team)} / {e(a.agent)} · rule <code>{e(a.rule)}</code> · priority "
            f"{e(a.priority)} ({parts_text})<br>{e(a.why)}{candidates}</li>"
        )
    main = (
        f'<h1>Conversation <span class="id">{e(view.conversation_id)}</span></h1>'
        f'<div class="columns"><section class="thread">'
        f"<h2>Thread ({plural(len(view.messages), 'message')})</h2>"
        + "".join(message_block(m) for m in view.messages)
        + '</section><aside><h2>Conversation</h2><dl class="facts">'
        + facts
        + f"</dl><h2>Participants</h2><ul>{people}</ul><h2>Customer</h2><dl class='facts'>{profile}</dl>"
        + (f"<h3>Earlier conversations</h3><ul>{past}</ul>" if past else "")
        + f"<h2>Routing decisions</h2><ol class='audit'>{''.join(audit_rows) or '<li>none</li>'}</ol>"
        + "</aside></div>"
    )
    return layout(f"Conversation {view.conversation_id}", "conversation", main)


def pipeline_page(view: PipelineView, notice: str = "") -> str:
    partitions = [
        f'<tr data-partition="{p.partition}"><th scope="row">{p.partition}</th>'
        + cell("backlog", p.backlog)
        + cell("pending", p.pending)
        + cell("lag", p.lag)
        + cell("oldest", p.oldest)
        + "</tr>"
        for p in view.partitions
    ]
    letters = [
        f'<tr data-dead-letter="{e(d.message_id)}"><td><code>{e(d.message_id)}</code></td>'
        f"<td>{d.partition}</td><td>{e(d.stage)}</td><td>{e(d.reason)}</td><td>{e(d.channel)}</td>"
        f'<td>{e(d.author)}</td><td class="text">{e(d.text)}</td>'
        '<td><form method="post" action="/pipeline/requeue">'
        f'<input type="hidden" name="message_id" value="{e(d.message_id)}">'
        "<button>requeue</button></form></td>"
        "</tr>"
        for d in view.dead_letters
    ]
    health = "".join(
        f'<li data-service="{e(name)}" class="{"ok" if status == "serving" else "bad"}">{e(name)}: '
        f"{e(status)}</li>"
        for name, status in view.health
    )
    workers = [
        f'<tr data-worker="{e(w.name)}" class="{e(w.status)}"><th scope="row">{e(w.name)}</th>'
        + cell("pending", w.pending)
        + cell("idle", w.idle)
        + "</tr>"
        for w in view.workers
    ]
    main = (
        "<h1>Pipeline</h1>"
        + (f'<p class="notice">{e(notice)}</p>' if notice else "")
        + f'<h2>Services</h2><ul class="health">{health}</ul>'
        + "<h2>Workers</h2>"
        + table(["worker", "pending", "idle since last read"], workers, "workers")
        + f"<h2>Inbound log ({plural(view.backlog, 'entry', 'entries')})</h2>"
        + table(["partition", "backlog", "pending", "not read yet", "oldest entry"], partitions, "partitions")
        + f"<h2>Dead letters ({view.dead_letter_count})</h2>"
        + table(["message", "partition", "stage", "reason", "channel", "author", "text", ""], letters, "dead")
    )
    return layout("Pipeline", "pipeline", main)


def not_found_page(what: str) -> str:
    return layout("Not found", "search", f"<h1>Not found</h1><p>{e(what)}</p>")
