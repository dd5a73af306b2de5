"""The model card (models/model_card.md) written from metrics.json, and its targets table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from parley.classifier import manifest
from parley.classifier.model import TOPICS
from parley.classifier.training import card_triage

LICENSES = {
    "airline_sentiment": "CC BY-NC-SA 4.0 (Crowdflower / Kaggle Twitter US Airline Sentiment)",
    "banking77": "CC BY 4.0 (PolyAI BANKING77, Casanueva et al. 2020)",
    "bitext": "CDLA-Sharing-1.0 as declared for the Bitext family (the sample states none; verify)",
    "twcs": "CC BY-NC-SA 4.0 (Thought Vector Customer Support on Twitter)",
    "examples": "Apache-2.0 (written by the Parley team)",
    "corrections": "the deployment's own traffic (its texts stay in its store, never in the project)",
}


SOURCE_USE = {
    "airline_sentiment": (
        "positive→praise, negative→complaint, neutral→question if it asks else other; hand labels "
        "(models/labels/airline_*_train.csv) override"
    ),
    "banking77": "question; security and loss categories→urgent; failure reports→complaint",
    "bitext": (
        "question; complaint, payment_issue, registration_problems→complaint; review rows → "
        "question/complaint/praise by wording"
    ),
    "twcs": "only the hand-labelled tweets (models/labels)",
    "examples": "team-written messages: other, urgent cases, praise and complaints outside airlines",
    "corrections": "agents' desk corrections as hand labels, with `parley train --corrections` only",
}


# The targets for the hand-labelled held-out set, reported in the model card.
TARGET_MACRO_F1 = 0.80


TARGET_URGENT_RECALL = 0.90


TARGET_BOT_PRECISION = 0.90


def refresh_card(models_dir: Path) -> None:
    """Fold speed.json into metrics.json and rewrite the model card (`parley classify-bench --write`)."""
    metrics = json.loads((models_dir / "metrics.json").read_text())
    speed_path = models_dir / "speed.json"
    if speed_path.exists():
        metrics["speed"] = json.loads(speed_path.read_text())
    (models_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    manifest.write(models_dir)
    (models_dir / "model_card.md").write_text(model_card(metrics, models_dir))


def _table(block: dict[str, Any]) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab, v in block["per_class"].items():
        lines.append(f"| {lab} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines.append(f"| **macro** | | | **{block['macro_f1']:.3f}** | |")
    return "\n".join(lines)


def _matrix(block: dict[str, Any]) -> str:
    labels = block["labels"]
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for lab, row in zip(labels, block["confusion_matrix"], strict=True):
        lines.append(f"| {lab} | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): honest for a handful of trials, where
    the plain estimate of 3 out of 3 would claim certainty."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - half), float(centre + half)


def targets_table(metrics: dict[str, Any], models_dir: Path | None = None) -> str:
    rows = ["| target | goal | measured | |", "|---|---|---|---|"]

    def row(
        name: str,
        goal: float,
        value: float | None,
        fmt: str = "{:.3f}",
        unit: str = "",
        interval: tuple[float, float] | None = None,
    ) -> None:
        """One target's row; `interval`, for a proportion measured on few cases, qualifies a "met" whose
        lower bound falls short of the goal."""
        if value is None:
            rows.append(f"| {name} | ≥ {fmt.format(goal)}{unit} | not measured | |")
            return
        verdict = "met" if value >= goal else f"not met (short by {fmt.format(goal - value)}{unit})"
        if value >= goal and interval and interval[0] < goal:
            low, high = interval
            verdict = f"met on too few answers to be sure (95% interval {low:.2f}–{high:.2f})"
        rows.append(f"| {name} | ≥ {fmt.format(goal)}{unit} | {fmt.format(value)}{unit} | {verdict} |")

    hand = metrics.get("hand_heldout")
    if hand:
        row("intent macro-F1, hand-labelled held-out", TARGET_MACRO_F1, hand["macro_f1"])
        row(
            "urgent recall, hand-labelled held-out",
            TARGET_URGENT_RECALL,
            hand["per_class"]["urgent"]["recall"],
        )
    bot = metrics.get("bot")
    if bot:
        row(
            f"bot precision on the answers it gives ({bot['correct']} of {bot['judged']} judged)",
            TARGET_BOT_PRECISION,
            bot["precision"],
            interval=wilson_interval(bot["correct"], bot["judged"]) if bot["judged"] else None,
        )
        rows.append(
            f"| bot coverage (answered / classified as questions) | report | "
            f"{bot['answered']} / {bot['predicted_questions']} "
            f"({bot['coverage_of_predicted_questions']:.2%}) | |"
        )
    speed = metrics.get("speed")
    if speed:
        median = speed.get("in_process_median_per_s")
        if median:
            # Judged by the median round: on a shared machine the best round can flatter.
            row("in-process batched classification (median round)", 20000, median, "{:,.0f}", " msg/s")
        else:
            row("in-process batched classification", 20000, speed["in_process_per_s"], "{:,.0f}", " msg/s")
        row("Classify RPC", 5000, speed.get("rpc_per_s"), "{:,.0f}", " msg/s")
    return "\n".join(rows + (card_triage.target_rows(metrics, models_dir) if models_dir else []))


def _rules_table(report: dict[str, Any]) -> str:
    names = sorted(
        set(report["training_hand_labelled"]) | set(report["hand_heldout"]) | set(report["training_rows"])
    )
    lines = [
        "| rule | fired / urgent (hand-labelled training tweets) | fired / urgent (held-out) "
        "| fired / urgent "
        "(all training rows, mapped labels) |",
        "|---|---|---|---|",
    ]

    def cell(block: dict[str, Any], name: str) -> str:
        v = block.get(name)
        return f"{v['fired']} / {v['urgent']}" if v else "0"

    for name in names:
        lines.append(
            f"| {name} | {cell(report['training_hand_labelled'], name)} "
            f"| {cell(report['hand_heldout'], name)} "
            f"| {cell(report['training_rows'], name)} |"
        )
    return "\n".join(lines)


def _agreement_text(agreement: dict[str, Any] | None) -> str:
    if not agreement:
        return ""
    urgent = agreement["per_class"]["urgent"]

    def reach(value: float, target: float) -> str:
        return "within" if value >= target else "beyond"

    return f"""
**How far people agree.** A second annotator labelled the {agreement["rows"]} original held-out messages
again, from the same guide, without seeing the first labels (`models/labels/second_annotator.csv`). Scored
against the first annotator's labels as if it were a model: macro-F1 **{agreement["macro_f1"]:.3f}**,
accuracy {agreement["accuracy"]:.3f}, Cohen's kappa {agreement["kappa"]:.3f}; `urgent` recall
**{urgent["recall"]:.3f}** and precision {urgent["precision"]:.3f}. Macro-F1 {TARGET_MACRO_F1:.2f} is
{reach(agreement["macro_f1"], TARGET_MACRO_F1)} what a second careful reader reaches on these labels;
`urgent` recall {TARGET_URGENT_RECALL:.2f} is {reach(urgent["recall"], TARGET_URGENT_RECALL)} it.
"""


def _calibration_line(c: dict[str, Any]) -> str:
    return f"ECE {c['ece']:.3f} (10 bins, top class), multiclass Brier score {c['brier']:.3f}"


def model_card(metrics: dict[str, Any], out_dir: Path) -> str:
    d = metrics["data"]
    by_ds = "\n".join(
        f"| {k} | {v['rows']} | {v['macro_f1']:.3f} |" for k, v in metrics["intent_by_dataset"].items()
    )
    hand = metrics.get("hand_heldout")
    if hand:
        m = hand["confusion_matrix"]
        ix = {lab: i for i, lab in enumerate(hand["labels"])}
        missed = sum(m[ix["urgent"]]) - m[ix["urgent"]][ix["urgent"]]
        by_source = ", ".join(
            f"{k} {v['macro_f1']:.3f} ({v['rows']} rows)" for k, v in hand["by_source"].items()
        )
        by_file = "\n".join(
            f"| `{k}` | {v['rows']} | {v['macro_f1']:.3f} | {v['urgent_found']} / {v['urgent']} |"
            for k, v in hand.get("by_file", {}).items()
        )
        hand_text = f"""On {hand["rows"]} hand-labelled real messages (`models/labels/*_heldout.csv`, never
trained on). The twcs tweets carry the earlier customer turns of their thread as context, as the
conversations service supplies them ({hand["with_context_rows"]} have such turns).

{_table(hand)}

Model alone (before the urgency rules): macro-F1 {hand["model_alone"]:.3f}. By source: {by_source}.

| file | rows | macro-F1 | urgent found |
|---|---|---|---|
{by_file}

`twcs_heldout.csv` and `airline_heldout.csv` are the original yardstick (600 messages); the rules and
features were revised while it was in use, so it flatters them a little (see "Changes" below).
`airline_fresh_heldout.csv` (300 airline tweets) was labelled independently, from the labelling guide alone,
after the last rule change, and had not been looked at when these figures were first computed: it is the
least biased of the three.
{_agreement_text(metrics.get("annotator_agreement"))}
Confusion matrix (rows true, columns predicted; also `confusion_intent_heldout.png`):

{_matrix(hand)}

- **praise → complaint**: {m[ix["praise"]][ix["complaint"]]} of {sum(m[ix["praise"]])} praise messages.
- **urgent → praise**: {m[ix["urgent"]][ix["praise"]]} of {sum(m[ix["urgent"]])} urgent messages;
  urgent → complaint: {m[ix["urgent"]][ix["complaint"]]}; urgent missed in total: {missed}.
- Calibration of the five probabilities on these messages: {_calibration_line(hand["calibration"])}.

Topic on the {hand["topic"]["rows"]} held-out messages with a hand-labelled topic: macro-F1
{hand["topic"]["macro_f1"]:.3f}, accuracy {hand["topic"]["accuracy"]:.3f}.

{_table(hand["topic"]).replace("| class |", "| topic |")}
"""
    else:
        hand_text = "No hand-labelled held-out set was present at training time.\n"
    bot = metrics.get("bot")
    if bot:
        bot_text = f"""The bot answers only messages classified `question` and not flagged for urgent review
whose best paraphrase reaches cosine similarity {bot["threshold"]} in the intent model's TF-IDF space, and
only on the channels the answer allows. Run over every real customer message in the data folder
({bot["messages"]:,} twcs and airline tweets, the held-out ones included), it answered
**{bot["answered"]}** of the {bot["predicted_questions"]:,} messages it classified as questions (coverage
{bot["coverage_of_predicted_questions"]:.2%}). Each answer was judged by reading the message against the
answer (`models/labels/bot_judgements.csv`): **{bot["correct"]} of {bot["judged"]} judged answers resolve
the message (precision {_pct(bot["precision"])})**; unjudged answers: {len(bot["unjudged"])}. Of the
{bot["heldout_questions"]} hand-labelled held-out questions it answered {bot["heldout_questions_answered"]}.
The team's knowledge base is written for a generic consumer brand, while the real tweets go to dozens of
specific brands: coverage on them is necessarily tiny. A brand that loads its own answers gets more.
"""
    else:
        bot_text = "Not measured (no hand-labelled held-out set at training time).\n"
    speed = metrics.get("speed")
    if speed:
        rpc = f"{speed['rpc_per_s']:,.0f}" if speed.get("rpc_per_s") else "not measured"
        median = (
            f" (best of the rounds; median {speed['in_process_median_per_s']:,.0f})"
            if speed.get("in_process_median_per_s")
            else ""
        )
        speed_text = f"""Measured by `parley classify-bench --write` on {speed["messages"]:,} messages
({speed["source"]}), batches of {speed["batch"]}, on a {speed["cpus"]}-core machine:
**in-process {speed["in_process_per_s"]:,.0f} messages/s**{median};
**through the Classify RPC {rpc} messages/s** (server in its own process, two batches in flight).
Figures vary with machine load; the command reports, it does not assert.
"""
    else:
        speed_text = "Not measured yet: run `parley classify-bench --write`.\n"
    rules = metrics.get("rules")
    rules_text = (
        f"""{_rules_table(rules)}

"fired / urgent" counts the messages a rule raised and how many of them carry the `urgent` label. On the
mapped training rows most airline tweets are labelled by sentiment, so a stranded passenger counts as a
complaint there; the hand-labelled columns are the ones to judge precision by. Both shortcuts that decide
which rules to run on a message (the batch prefilter, and the cue pre-check for messages it cannot scan)
were compared with running every rule on {rules["precheck_checked"]:,} texts: {rules["precheck_mismatches"]}
differences.
"""
        if rules
        else ""
    )
    sources = "\n".join(f"| {name} | {LICENSES[name]} | {use} |" for name, use in SOURCE_USE.items())
    shares = ", ".join(f"{k} {v}" for k, v in metrics.get("source_shares", {}).items())
    return f"""# Parley classifier — model card

Version `{metrics["model_version"]}`, trained {metrics["trained_at"]} by `parley train`.

## Targets

{targets_table(metrics, out_dir)}

## Models
- **intent** (`intent.skops`): TF-IDF over word 1–2-grams (words, "?" and "!" as tokens) → multinomial
  logistic regression (class-balanced), five classes: praise, question, complaint, urgent, other. Text is
  normalised first (lower-case; URLs, emails, handles, numbers → placeholder tokens; the airline re-save
  artefacts "Cancelled Flight…" and "Late Flight" undone). A message that follows earlier customer turns of
  its conversation (`ClassifyItem.context`) carries one extra token, `xctx`: replies that supply details or
  say "done" are labelled differently from conversation openers. A message that answers a brand message
  (`ClassifyItem.brand_reply`; for twcs tweets the brand tweet they reply to) carries `xbrdm` when that
  message asked for a DM and `xbrask` when it asked a question or for details.
- **topic** (`topic.skops`): the intent model's fitted vectorizer → logistic regression over six topics:
  {", ".join(TOPICS)}.
- **urgency rules** (`services/parley/classifier/rules.py`) raise an intent to `urgent`, never lower it;
  every rule that fires is reported with the text that triggered it.
- **entities** (`entities.py`): regular expressions with spans (order and account numbers, emails, phones,
  Luhn-checked payment cards, mod-97-checked IBANs, flight numbers, URLs, handles, street addresses with
  the number first or the street first, with ZIP codes, UK and continental postcodes); no statistical
  model.
- **knowledge base** (`knowledge_base.yaml`, by the team, or a brand's CSV or YAML set by
  `PARLEY_KNOWLEDGE_BASE`): the team's YAML retrieves by cosine similarity; a brand's CSV by a classifier
  head over its example questions (see "The bot on a brand's knowledge base"); both abstain below a
  threshold.
- **urgent review** (`review.py`, cues in `urgent_review.yaml`): the `urgent_review` flag (see "Urgent
  review").
- Artifacts are saved with skops and loaded with an explicit list of trusted types (no pickle).
- Serving computes the same TF-IDF matrix as scikit-learn with a batched implementation (checked equal in the
  tests), and runs rules, entity patterns and the knowledge base only on the messages that need them. Which
  urgency rules can fire on which messages of a batch is found by one Hyperscan scan, every trigger compiled
  in prefilter mode (a superset of its matches); the Python patterns then confirm those few. Training checks
  that this gives exactly what running every rule on every message gives.

## Data and licenses
| source | license | use |
|---|---|---|
{sources}

The mapping is data: `models/label_mapping.yaml`. **Two sources are non-commercial (CC BY-NC-SA 4.0)**, so
the shipped models are for non-commercial use; retrain on your own data with `parley train --data DIR`.

Rows mapped: {d["rows_mapped"]}; hand labels used for training: {d["hand_labels_train"]} (held-out hand labels
never trained on: {d["hand_labels_heldout"]}; urgent-review labels, never trained on either:
{d.get("urgent_review_labels", 0)}); after de-duplication on normalised text (before the split):
{d["rows"]} rows ({d["conflicting_texts_dropped"]} texts with conflicting labels dropped).
Each source carries a share of the total training weight ({shares}), so the real social-media rows dominate
the two large non-social sets. The off-domain sets (banking77, bitext, the team's examples) are trained as
addressed to the brand ("@brand …", as 95% of real messages are) and together carry at most
{metrics.get("off_domain", {}).get("max_class_share", "–")} of any class's weight. Bitext's payment and
sign-up problem reports map to `complaint` (LABELS.md).
Split: a stable hash of (dataset, id) holds out 20%: {metrics["train_rows"]} train,
{metrics["test_rows"]} test. Train label counts: {json.dumps(metrics["train_label_counts"])}.

## Metrics on the hand-labelled held-out set (real traffic — the yardstick)

{hand_text}
## Metrics on the own test split (mapped labels)
Intent, model plus urgency rules (what the service returns):

{_table(metrics["intent_with_rules"])}

Confusion matrix (also `confusion_intent.png`):

{_matrix(metrics["intent_with_rules"])}

Intent, model alone: macro-F1 {metrics["intent_model"]["macro_f1"]:.3f}. Calibration:
{_calibration_line(metrics["calibration"])}.
Topic: macro-F1 {metrics["topic"]["macro_f1"]:.3f}, accuracy {metrics["topic"]["accuracy"]:.3f}.

Macro-F1 by source (classes present in that source):

| source | test rows | macro-F1 |
|---|---|---|
{by_ds}

These labels are mapped from sentiment and intent sets, not judged per message, and three of the five sources
are not social traffic: this split flatters the model; the hand-labelled set above does not.

## Urgency rules

{rules_text}
## The bot's answers

{bot_text}
{card_triage.sections(metrics, out_dir)}## Speed

{speed_text}
Wall-clock figures depend on the machine and its load. The same serving code measured 14,518 messages/s
in-process (median round) on the 2-core machine of 2026-11-24 and 21,520 to 27,285 (eight runs) on the one of
2026-11-25; on one machine, runs minutes apart differ by up to a quarter. Instruction counts do not move:
`scripts/classify-instructions` (callgrind over 4,000 twcs messages in batches of 1,000, after loading and a
warm-up batch) counted 499k instructions per message for the serving code of 2026-11-24 and 261k after the
changes of 2026-11-25 (the urgency rules prefiltered by one Hyperscan scan per batch, batched tokenising,
language checks and handles, TF-IDF counted by sorting, no per-call input checks), with identical results on
41,175 texts from the data folder.

## Reproduce

```
parley train --data ../shared/data          # every model, metrics.json, this card, both confusion PNGs
parley eval --data FILE.csv [--json]        # text,label CSV
parley classify --input FILE.csv --output FILE.jsonl
parley classify-bench --write               # speed figures into speed.json and this card
parley train --data ../shared/data --corrections   # also the agents' desk corrections (REDIS_URL)
scripts/learning-curve --data ../shared/data > models/learning_curve.jsonl
scripts/bot-eval-banking77 --out /tmp/b77 && parley bot-eval --kb /tmp/b77/kb.csv --data /tmp/b77/test.csv \
  --output /tmp/b77/pred.jsonl --json > models/bot_eval/banking77_test.json
```

## Changes measured on the held-out set

Each change below was measured by retraining and scoring the 600 original held-out messages (macro-F1 with
the rules). With 19 urgent messages and 600 in all, differences under about 0.02 are within noise. Until
the second block, no rule or feature was written from the held-out misses.

| change | held-out macro-F1 | urgent recall | kept |
|---|---|---|---|
| before (context token only) | 0.580 | 4 / 19 | |
| brand-message tokens: presence, DM, question, apology, "glad to help" | 0.569 | 4 / 19 | no |
| brand-message tokens: DM and question/details only | 0.584 | 4 / 19 | yes |
| + 90 hand-labelled airline tweets (stranding, safety, legal candidates) | 0.595 | 5 / 19 | yes |
| + 65 more hand-labelled twcs tweets | 0.592 | 5 / 19 | yes (more real labels) |
| + more urgency wordings (1) | 0.592 | 5 / 19 | yes (fires on no held-out message) |
| source shares twcs 16, airline 1 instead of 8 and 2 (2) | 0.581 | 5 / 19 | no |

| change (second block) | held-out macro-F1 | urgent recall | kept |
|---|---|---|---|
| + 573 twcs tweets (the rest of the pool), 1,200 random airline tweets, by hand | 0.612 | 5 / 19 | yes |
| the shipped models refitted on every row, the 20% test split included | 0.620 | 5 / 19 | yes |
| previous customer turn's words as features (prefixed tokens) | 0.580 | | no |
| brand message's words as features (prefixed tokens) | 0.576 | | no |
| hand-labelled airline rows weighted ×3 / ×10 / ×30 | 0.626 / 0.606 / 0.612 | | no (noise) |
| airline re-save artefacts undone when the data is read, so the rules see real text (3) | | | yes |
| urgency rules revised from misses and false alarms on *training* tweets (4) | 0.638 | 6 / 19 | yes |
| + security and fraud wordings in es, fr, de, pt and ja (5) | 0.662 | 8 / 19 | yes |
| per-class decision offsets tuned by 5-fold cross-validation on the training hand labels | 0.658 | | no |
| `urgent` once its probability passes a threshold (0.05–0.5) | | | no (no gain in CV) |
| a follow-up inherits `urgent` when an earlier customer turn fired a rule | | | no (6) |
| sentence embeddings (all-MiniLM-L6-v2) instead of TF-IDF / added to it | 0.559 / 0.671 | | no (7) |

(1) an accident/injury rule, "I'm a lawyer", "what will the FAA say", someone else's data shown on one's
booking, charged for a subscription never taken; each checked against the hand-labelled training tweets.
(2) the best of six weightings by 4-fold cross-validation on the hand-labelled training tweets (0.663 against
0.654 for the shipped setting); the gain did not carry over to the held-out set.
(3) the published airline file replaced "cancel" by "Cancelled Flight" and "late" by "Late Flight", even
inside words; the rules matched "cancelled my flight" only in text no customer writes.
(4) a bare "stranded" no longer suffices (7 of 25 such hand-labelled tweets were urgent): it needs a deadline
or a hardship, or no bed or ride; new: a departure at risk ("hold the plane", "might miss our flight"),
stuck while "not getting any help", cut off from the airport, waiting in freezing weather, a purchase for
something never bought, a SIM swap, unwanted touching, "Safety???". On the hand-labelled training tweets
the rules now catch 55 of 76 urgent messages and fire on 15 others.
(5) written after reading two held-out misses (a French and a Japanese fraud report): this row flatters the
original set by 0.024; `airline_fresh_heldout.csv` carries no such bias.
(6) on the hand-labelled training tweets only 6 of 19 such follow-ups were labelled urgent.
(7) in a separate environment, not a dependency: about 100 messages/s on this machine against thousands
for TF-IDF, for +0.009 macro-F1 when added to TF-IDF.

What limits the model, measured on all 900 held-out messages (2026-11-25):

| experiment | held-out macro-F1 | kept |
|---|---|---|
| the shipped setting, retrained | 0.637 | |
| a random half / quarter of the training hand labels (two draws each) | 0.612, 0.617 / 0.605, 0.616 | (8) |
| character 2–5-grams beside the word n-grams | 0.626 | no (9) |
| per-class decision offsets tuned by 4-fold cross-validation on the hand labels | 0.649 | no (noise) |
| all-MiniLM-L6-v2 fine-tuned on the training hand labels (model alone, no rules) | 0.583 | no (10) |

(8) Four times the hand labels gained about 0.02–0.03: more labels of the same kind will not close the gap
to 0.80.
(9) 4-fold cross-validation on the training hand labels: 0.687 against 0.684 for words alone.
(10) In a separate environment, not a dependency: four epochs on CPU (about 6 minutes), the epoch picked
on a tenth of the training hand labels; 0.585 with 3,000 mapped airline rows added. The shipped model alone
(without the rules) scores 0.557 on the same messages. It classifies about 120 messages/s on this machine, a
hundredth of the speed target. Sentence embeddings beside TF-IDF gave 0.601 model alone, at about 60–130
messages/s.

## Caveats
- The held-out sets are small: 19 urgent messages in the original 600 (0.05 of recall each) and 7 in the
  fresh 300.
- Labels are mapped, not judged per message, for every source but the hand-labelled tweets: airline
  "negative" includes urgent cases, "neutral" mixes questions and chatter, banking77 and bitext are not social
  text (bitext is generated).
- `urgent` comes mostly from banking security categories, team examples and a few dozen hand-labelled
  tweets; the rules carry most of it on real traffic.
- Probabilities are those of a class-balanced logistic regression; the calibration figures above say how far
  to trust them as frequencies.
"""
